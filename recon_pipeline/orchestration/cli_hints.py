"""A clear line instead of Dagster's traceback for `dagster asset materialize --select '*'`.

The raw/<source> assets are partitioned by drop date, the others are not, and Dagster's CLI
stops before running anything when such a selection comes without `--partition`. The pipeline
itself needs no partition: the message says what to run instead.
"""

import sys

_DAGSTER_CHECK = "Asset has partitions, but no '--partition' option was provided"
HINT = (
    "错误: raw/* 资产按落地日期分区，dagster asset materialize 需要 --partition YYYY-MM-DD（只读取该日批次，"
    "其余资产在启动时间重建）。运行整条流水线请用: dagster job execute -m recon_pipeline.definitions "
    "-j nightly_reconciliation --tags '{\"recon/as_of\": \"2025-05-06T09:00:00\"}'\n"
)


def explain_partition_errors() -> None:
    """Install once: only that exception's printing changes; every other error is printed as before."""
    previous = sys.excepthook
    if getattr(previous, "recon_hint", False):
        return

    def hook(kind, value, traceback):
        if _DAGSTER_CHECK in str(value):
            sys.stderr.write(HINT)
            return
        previous(kind, value, traceback)

    hook.recon_hint = True
    sys.excepthook = hook
