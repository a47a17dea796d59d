"""A failed Dagster run reaches the data engineers through the configured chat webhook."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from recon_pipeline.alerts.notify import send_operator_message
from recon_pipeline.settings import load_settings


def test_operator_message_is_posted_to_the_webhook():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {"RECON_WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/hook", "RECON_WEBHOOK_KIND": "wecom"}
        delivered = send_operator_message(load_settings(), "[对账流水线] 运行失败: refresh", "dbt build 失败", env=env)
    finally:
        server.shutdown()
    assert delivered == 1
    assert "运行失败" in json.dumps(received[0], ensure_ascii=False)
