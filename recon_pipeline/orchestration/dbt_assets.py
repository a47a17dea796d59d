"""The dbt project as Dagster assets, split around the Python matching step.

`dbt_staging` builds the staging models the matching engine reads; `dbt_marts` builds
everything downstream of `matching/receipt_links`. dbt tests show up as asset checks. Both run
`stages.dbt_cli_args` (the run's as-of and the settings' vars), like `recon run`.
"""


import hashlib
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.asset_utils import get_asset_check_key_for_test

from recon_pipeline import stages
from recon_pipeline.orchestration.resources import ReconResource, as_of_metadata, run_context
from recon_pipeline.settings import DBT_PROJECT_DIR
from recon_pipeline.transform.dbt_runner import PIPELINE_ENV, dbt_executable, dbt_work_dir


class ReconDbtTranslator(DagsterDbtTranslator):
    """Models are keyed `[schema, model]` (e.g. mart/fct_order_reconciliation) and grouped by
    schema; sources keep `[source, table]`, which are the keys of the Python assets that write them."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        schema = dbt_resource_props.get("config", {}).get("schema") or "main"
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props.get("config", {}).get("schema") or "dbt"

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project) -> dg.AssetCheckSpec | None:
        """dbt tests as asset checks, described by their yml: its `description:` if written, else
        what the test's arguments say (dagster-dbt shows only a meta description, usually none)."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        return spec._replace(description=describe_dbt_test(manifest["nodes"][unique_id]))


# What the manifest is parsed from: when one of these is newer than it, it is parsed again.
PROJECT_SOURCES = ("models", "macros", "tests", "dbt_project.yml", "selectors.yml", "profiles.yml")


def manifest_target_dir(project_dir: Path) -> Path:
    """Where the code location's manifest lives: the project's target/ when we may write there
    (a checkout), else a per-user cache (a package installed into a read-only site-packages)."""
    if os.access(project_dir, os.W_OK):
        return project_dir / "target"
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha1(str(project_dir).encode()).hexdigest()[:12]
    return cache_home / "recon-pipeline" / f"dbt-target-{digest}"


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    for name in PROJECT_SOURCES:
        source = project_dir / name
        paths = source.rglob("*") if source.is_dir() else [source]
        if any(path.is_file() and path.stat().st_mtime > built for path in paths):
            return True
    return False


def _ref_name(reference: str) -> str:
    """"ref('fct_order_reconciliation')" -> "fct_order_reconciliation"."""
    found = re.search(r"""(?:ref|source)\(([^)]*)\)""", reference)
    return ".".join(part.strip(" '\"") for part in found.group(1).split(",")) if found else reference


def describe_dbt_test(test: Mapping[str, Any]) -> str:
    """One sentence for a dbt data test: the yml description, else one built from its arguments."""
    written = test.get("description") or (test.get("config", {}).get("meta") or {}).get("description")
    if written:
        return written
    metadata = test.get("test_metadata") or {}
    kind, arguments = metadata.get("name"), metadata.get("kwargs") or {}
    column = f"`{arguments['column_name']}`" if arguments.get("column_name") else "the row"
    sentences = {
        "unique": f"{column} has no duplicates.",
        "not_null": f"{column} is never null.",
        "accepted_values": f"{column} is one of: {', '.join(map(str, arguments.get('values') or []))}.",
        "relationships": f"every {column} exists in {_ref_name(arguments.get('to', ''))}.{arguments.get('field', '')}.",
        "unique_combination_of_columns": f"one row per ({', '.join(arguments.get('combination') or [])}).",
        "value_between": f"{column} is between {arguments.get('min_value')} and {arguments.get('max_value')}.",
        "expression_is_true": f"every row satisfies `{arguments.get('expression')}`"
                              + (f" (where {arguments['where_clause']})." if arguments.get("where_clause") else "."),
        "is_period_label": f"{column} is a period label YYYY-MM.",
    }
    sentence = sentences.get(kind) or f"dbt test `{test.get('name')}`."
    return sentence[0].upper() + sentence[1:]


@cache
def dbt_project() -> DbtProject:
    """The dbt project, its manifest prepared the way dagster-dbt does (`dbt parse`) when it is
    missing or older than the project's files: a plain `pip install` needs no `make` or `dbt parse`."""
    # The preparer calls `dbt` from PATH; make it the one installed beside this Python,
    # so it works without an activated virtualenv.
    bin_dir = os.path.dirname(dbt_executable())
    if bin_dir and bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    project = DbtProject(project_dir=DBT_PROJECT_DIR, target_path=manifest_target_dir(DBT_PROJECT_DIR))
    if project.preparer.using_dagster_dev():
        project.prepare_if_dev()  # `dagster dev` re-parses at every load, to pick up edits
    elif manifest_is_stale(project.project_dir, project.manifest_path):
        project.target_path.mkdir(parents=True, exist_ok=True)
        project.preparer.prepare(project)
    return project


translator = ReconDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, recon: ReconResource, selector: str) -> Iterator:
    run = run_context(context, recon)
    if stages.is_spark(run):
        yield from _build_on_spark(context, run, selector)
        return
    # dbt's profiles.yml reads the warehouse path from the environment; the prod target refuses
    # to run outside the pipeline (guard_production_target).
    os.environ["RECON_WAREHOUSE"] = str(run.warehouse)
    os.environ.update(PIPELINE_ENV)
    # One target folder per warehouse (not a new dbt_project/target/<id> per invocation), beside
    # recon run's: nothing piles up and dbt's partial parsing carries over from run to run.
    target = Path(dbt_work_dir(run.warehouse)) / "dagster-target"
    stages.mark_computing(run)  # as recon run's dbt stages: the warehouse no longer holds the last publication's result
    invocation = dbt.cli(stages.dbt_cli_args(run), context=context, target_path=target)
    for event in invocation.stream():
        if isinstance(event, dg.Output):
            event = event.with_metadata({**event.metadata, **as_of_metadata(run)})
        yield event


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    selector=stages.DBT_BEFORE_MATCHING,
    name="dbt_staging",
    dagster_dbt_translator=translator,
    pool="warehouse",
)
def dbt_staging(context: dg.AssetExecutionContext, dbt: DbtCliResource, recon: ReconResource):
    yield from _build(context, dbt, recon, stages.DBT_BEFORE_MATCHING)


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    selector=stages.DBT_AFTER_MATCHING,
    name="dbt_marts",
    dagster_dbt_translator=translator,
    pool="warehouse",
)
def dbt_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, recon: ReconResource):
    yield from _build(context, dbt, recon, stages.DBT_AFTER_MATCHING)


def _build_on_spark(context: dg.AssetExecutionContext, run: stages.RunContext, selector: str) -> Iterator:
    """dbt-spark runs inside this process, on the run's SparkSession (dagster-dbt's CLI would
    start another process, which the local metastore does not admit): the stage function builds
    and, like dagster-dbt, each model is reported materialized and each test as its asset check."""
    build = stages.dbt_marts if selector == stages.DBT_AFTER_MATCHING else stages.dbt_staging
    outcome = build(run)
    manifest = json.loads(Path(dbt_project().manifest_path).read_text(encoding="utf-8"))
    for unique_id, status in outcome.nodes:
        if unique_id.startswith("model."):
            key = translator.get_asset_spec(manifest, unique_id, dbt_project()).key
            if key in context.selected_asset_keys:
                yield dg.MaterializeResult(asset_key=key, metadata={**as_of_metadata(run), "engine": "spark"})
        elif unique_id.startswith("test."):
            check = get_asset_check_key_for_test(manifest, translator, unique_id, dbt_project())
            if check is not None and check in context.selected_asset_check_keys:
                yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=status == "pass",
                                          metadata={"status": status})
