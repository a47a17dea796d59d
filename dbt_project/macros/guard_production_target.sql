{#- Production (prod; spark on the Spark engine) is written only by the pipeline (recon run, Dagster), which sets
    RECON_PIPELINE_RUN=1: a hand-run `dbt build --target prod` would rebuild the marts at another
    as-of than the alerts and matching, and publish nothing. Analysts use `recon dbt ...`. -#}
{% macro guard_production_target() %}
  {%- if execute and target.name in ('prod', 'spark') and env_var('RECON_PIPELINE_RUN', '') != '1' -%}
    {{ exceptions.raise_compiler_error(
        "The prod target is the production warehouse and only the pipeline writes it (recon run, "
        ~ "Dagster). Use `recon dbt <command>` (a development copy with the last run's vars) or the dev target."
    ) }}
  {%- endif -%}
{% endmacro %}
