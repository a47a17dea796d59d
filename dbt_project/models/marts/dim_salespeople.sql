-- One row per salesperson (current state): name, e-mail, manager, region. A manager's team is
-- the salespeople whose manager_email is the manager's e-mail; manager_salesperson_id names
-- the manager when they are a salesperson too.
select
    salespeople.salesperson_id,
    salespeople.name as salesperson_name,
    salespeople.email,
    salespeople.manager_email,
    managers.salesperson_id as manager_salesperson_id,
    managers.name as manager_name,
    salespeople.region_code,
    salespeople.updated_at
from {{ ref('stg_salespeople') }} as salespeople
left join (
    select email, min(salesperson_id) as salesperson_id, min(name) as name
    from {{ ref('stg_salespeople') }}
    where email is not null
    group by email
) as managers
    on lower(salespeople.manager_email) = lower(managers.email)
