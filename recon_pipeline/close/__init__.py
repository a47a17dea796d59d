"""Month-end close (封账): freeze a closed period, book later changes as adjustments (调整), and build each salesperson's statement (业绩确认单).

Stage after the marts: `adjustments.refresh_adjustments` runs in every pipeline run; `freeze`
closes and reopens periods (the `recon close-period` / `reopen-period` commands and the
Dagster close job); `statement` and `export` build and write the 业绩确认单.
"""
