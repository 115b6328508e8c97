-- title: Segment sizes and revenue share over time
-- description: For every as_of date of gold.segment_membership_history, each RFM segment's customers,
--   their share of all scored customers, and their revenue (completed orders placed before that
--   as_of date, reporting currency) with its share of all scored customers' revenue.
WITH revenue AS (
    SELECT h.as_of_date, h.customer_id, h.rfm_segment,
           coalesce(sum(CASE WHEN o.status = 'completed' AND o.order_date < h.as_of_date
                             THEN o.amount_reporting END), 0) AS revenue
    FROM ${gold}.segment_membership_history AS h
    LEFT JOIN ${gold}.fct_orders AS o ON o.customer_id = h.customer_id
    GROUP BY h.as_of_date, h.customer_id, h.rfm_segment
),
segments AS (
    SELECT as_of_date, rfm_segment, count(*) AS customers, sum(revenue) AS revenue
    FROM revenue
    GROUP BY as_of_date, rfm_segment
)
SELECT as_of_date,
       rfm_segment,
       customers,
       round(CAST(customers AS double) / sum(customers) OVER (PARTITION BY as_of_date), 4) AS customer_share,
       CAST(revenue AS decimal(18, 2)) AS revenue,
       round(CAST(revenue AS double) / nullif(CAST(sum(revenue) OVER (PARTITION BY as_of_date) AS double), 0), 4)
           AS revenue_share
FROM segments
ORDER BY as_of_date, revenue DESC, rfm_segment
