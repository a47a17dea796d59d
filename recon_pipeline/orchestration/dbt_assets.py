"""The dbt project as Dagster assets, split around the Python matching step.

`dbt_staging` builds the staging models the matching engine reads; `dbt_marts` builds
everything downstream of `matching/receipt_links`. dbt tests show up as asset checks. Both call
the stage functions `recon run` calls (`stages.dbt_staging`, `stages.dbt_marts`: dbt in this
process, the run's as-of and the settings' vars), with the same plan of what the inputs require.
dagster-dbt gives the assets and checks from the manifest; it does not run dbt here.
"""


import hashlib
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject, dbt_assets
from dagster_dbt.asset_utils import get_asset_check_key_for_test

from recon_pipeline import stages
from recon_pipeline.as_of import as_of_text
from recon_pipeline.orchestration.matching_assets import RECEIPT_LINKS_KEY
from recon_pipeline.orchestration.publish_assets import PUBLISHED_KEY
from recon_pipeline.orchestration.resources import NO_CHANGE_TAG, ReconResource, as_of_metadata, run_context
from recon_pipeline.progress import LogProgress, reporting
from recon_pipeline.settings import DBT_PROJECT_DIR
from recon_pipeline.transform.dbt_runner import dbt_executable


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


def _build(context: dg.AssetExecutionContext, recon: ReconResource, selector: str) -> Iterator:
    """One half of the dbt project through the stage function `recon run` calls (in this process,
    on either engine), then each model reported materialized and each test as its asset check.

    What the run's inputs require (`stages.plan`, as in `recon run`): when they equal the last
    publication's, the staging step yields nothing and Dagster skips every step after it (their
    assets keep their last materialization, which is this result); the data tests run only when
    the data changed (else `dbt run`: the models without their checks)."""
    run = run_context(context, recon)
    models = _selected_models(context) if context.is_subset else None
    with reporting(LogProgress(context.log.info)):
        if models == []:  # only checks selected (the UI's "Execute checks"): those tests, nothing built
            outcome = stages.dbt_build(run, selector, with_tests=True, models=_selected_tests(context))
        elif selector == stages.DBT_BEFORE_MATCHING:
            plan = stages.plan(run)  # (a full refresh forgets what earlier runs computed, here)
            if plan.no_change and models is None:
                _report_no_change(context, run)
                return
            outcome = stages.dbt_staging(run, plan, models)
        else:
            # Not forgotten again (the staging tests just recorded); a full refresh matched every
            # line, so the marts' tests run anyway.
            plan = stages.plan(run.with_options(full_refresh=False))
            outcome = stages.dbt_marts(run, plan, _matching_changed(context), models)
    context.log.info(f"dbt {'build' if outcome.tested else 'run（数据未变，数据测试沿用上次结果）'}: "
                     + ", ".join(f"{status} {count}" for status, count in sorted(outcome.counts.items())))
    yield from _dbt_events(context, run, outcome)


def _selected_models(context: dg.AssetExecutionContext) -> list[str]:
    """The dbt model names of the assets selected in a run of only some of them."""
    manifest = _manifest()
    return sorted(node["name"] for unique_id, node in manifest["nodes"].items()
                  if unique_id.startswith("model.") and _asset_key(manifest, unique_id) in context.selected_asset_keys)


def _selected_tests(context: dg.AssetExecutionContext) -> list[str]:
    """The dbt test names of the asset checks selected."""
    manifest = _manifest()
    return sorted(node["name"] for unique_id, node in manifest["nodes"].items() if unique_id.startswith("test.")
                  and get_asset_check_key_for_test(manifest, translator, unique_id, dbt_project())
                  in context.selected_asset_check_keys)


def _matching_changed(context: dg.AssetExecutionContext) -> bool:
    """Whether this run's matching step changed the links the marts' tests read (`LinkSummary.changed`,
    its materialization's `output_changed`); not knowing (matching not in this run) counts as changed."""
    event = context.instance.get_latest_materialization_event(RECEIPT_LINKS_KEY)
    if event is None or event.run_id != context.run.run_id:
        return True
    changed = event.asset_materialization.metadata.get("output_changed")
    return True if changed is None else bool(changed.value)


def _report_no_change(context: dg.AssetExecutionContext, run: stages.RunContext) -> None:
    """The run's inputs equal the last publication's: say so on the run (tag `recon/no_change`), in its
    log, and as an observation of the publication (what it holds, unchanged)."""
    links, open_alerts, _ = stages.read_outcome(run)
    skipped = "、".join(stages.SKIPPED_WHEN_NO_CHANGE)
    context.log.info(f"无变化，沿用上次结果：可见批次、代码、设置与 as-of {as_of_text(run.as_of)} 均与上次发布相同，"
                     f"跳过 {skipped}")
    context.instance.add_run_tags(context.run.run_id, {NO_CHANGE_TAG: "true"})
    context.log_event(dg.AssetObservation(asset_key=PUBLISHED_KEY, metadata={
        **as_of_metadata(run),
        "outcome": dg.MetadataValue.text("无变化，沿用上次结果"),
        "skipped": dg.MetadataValue.json(list(stages.SKIPPED_WHEN_NO_CHANGE)),
        "links_by_status": dg.MetadataValue.json(links),
        "open_alerts": dg.MetadataValue.json({k: int(v) for k, v in open_alerts.items()}),
    }))


@cache
def _manifest() -> dict:
    return json.loads(Path(dbt_project().manifest_path).read_text(encoding="utf-8"))


def _asset_key(manifest: dict, unique_id: str) -> dg.AssetKey:
    return translator.get_asset_spec(manifest, unique_id, dbt_project()).key


def _dbt_events(context: dg.AssetExecutionContext, run: stages.RunContext, outcome) -> Iterator:
    """dbt's results as Dagster events: each model built, each test run (as its asset check)."""
    manifest = _manifest()
    for unique_id, status in outcome.nodes:
        seconds = outcome.seconds.get(unique_id)
        if unique_id.startswith("model."):
            key = _asset_key(manifest, unique_id)
            if key in context.selected_asset_keys:
                yield dg.MaterializeResult(asset_key=key, metadata={
                    **as_of_metadata(run), "engine": run.options.engine, "unique_id": unique_id,
                    "dbt_seconds": seconds, "tests_run": outcome.tested})
        elif unique_id.startswith("test."):
            check = get_asset_check_key_for_test(manifest, translator, unique_id, dbt_project())
            if check is not None and check in context.selected_asset_check_keys:
                yield dg.AssetCheckResult(
                    asset_key=check.asset_key, check_name=check.name, passed=status == "pass",
                    severity=dg.AssetCheckSeverity.WARN if status == "warn" else dg.AssetCheckSeverity.ERROR,
                    metadata={"status": status, "unique_id": unique_id, "dbt_seconds": seconds})


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    selector=stages.DBT_BEFORE_MATCHING,
    name="dbt_staging",
    dagster_dbt_translator=translator,
    pool="warehouse",
)
def dbt_staging(context: dg.AssetExecutionContext, recon: ReconResource):
    yield from _build(context, recon, stages.DBT_BEFORE_MATCHING)


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    selector=stages.DBT_AFTER_MATCHING,
    name="dbt_marts",
    dagster_dbt_translator=translator,
    pool="warehouse",
)
def dbt_marts(context: dg.AssetExecutionContext, recon: ReconResource):
    yield from _build(context, recon, stages.DBT_AFTER_MATCHING)
