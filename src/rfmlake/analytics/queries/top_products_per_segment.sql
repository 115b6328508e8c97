-- title: Top products per segment
-- description: The five products with the most revenue (reporting currency) among each RFM segment's
--   customers, over the orders that count for RFM (gold.fct_orders.is_rfm_counted), with units sold
--   and how many of the segment's customers bought them.
WITH lines AS (
    SELECT r.rfm_segment,
           i.product_id,
           o.customer_id,
           i.quantity,
           i.line_amount * o.rate_to_reporting AS revenue
    FROM ${silver}.order_items AS i
    JOIN ${gold}.fct_orders AS o ON o.order_id = i.order_id
    JOIN ${gold}.customer_rfm AS r ON r.customer_id = o.customer_id
    WHERE o.is_rfm_counted
),
per_product AS (
    SELECT rfm_segment, product_id,
           CAST(sum(quantity) AS bigint) AS units,
           count(DISTINCT customer_id) AS customers,
           CAST(round(sum(revenue), 2) AS decimal(18, 2)) AS revenue
    FROM lines
    GROUP BY rfm_segment, product_id
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY rfm_segment ORDER BY revenue DESC, product_id) AS product_rank
    FROM per_product
)
SELECT k.rfm_segment, k.product_rank, k.product_id, p.name AS product_name, p.category,
       k.units, k.customers, k.revenue
FROM ranked AS k
LEFT JOIN ${silver}.products AS p ON p.product_id = k.product_id
WHERE k.product_rank <= 5
ORDER BY k.rfm_segment, k.product_rank
