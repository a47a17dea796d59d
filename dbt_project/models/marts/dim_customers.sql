-- One row per customer (current state): registered name, aliases and credit code (the
-- dashboard's search), region, industry and the owning salesperson with their name.
select
    customers.customer_id,
    customers.customer_name,
    customers.credit_code,
    customers.aliases,
    customers.region_code,
    customers.industry,
    customers.owner_salesperson_id,
    salespeople.name as owner_salesperson_name,
    customers.updated_at
from {{ ref('stg_customers') }} as customers
left join {{ ref('stg_salespeople') }} as salespeople
    on customers.owner_salesperson_id = salespeople.salesperson_id
