-- title: Cohort retention by first-order month
-- description: Customers grouped by the month of their first completed order (gold.fct_orders); for
--   each later month, how many of them ordered again and the share of the cohort that is.
WITH completed AS (
    SELECT customer_id, CAST(date_trunc('month', order_date) AS date) AS order_month
    FROM ${gold}.fct_orders
    WHERE status = 'completed'
),
cohorts AS (
    SELECT customer_id, min(order_month) AS cohort_month
    FROM completed
    GROUP BY customer_id
),
activity AS (
    SELECT DISTINCT c.cohort_month, o.customer_id,
           date_diff('month', c.cohort_month, o.order_month) AS months_since_first
    FROM completed AS o
    JOIN cohorts AS c ON c.customer_id = o.customer_id
),
sizes AS (
    SELECT cohort_month, count(*) AS cohort_customers FROM cohorts GROUP BY cohort_month
)
SELECT a.cohort_month,
       CAST(a.months_since_first AS integer) AS months_since_first,
       s.cohort_customers,
       count(*) AS active_customers,
       round(CAST(count(*) AS double) / s.cohort_customers, 4) AS retention_rate
FROM activity AS a
JOIN sizes AS s ON s.cohort_month = a.cohort_month
GROUP BY a.cohort_month, a.months_since_first, s.cohort_customers
ORDER BY a.cohort_month, months_since_first
