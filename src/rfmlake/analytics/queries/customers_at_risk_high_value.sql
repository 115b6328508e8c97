-- title: Customers at risk with high value
-- description: Customers who spent a lot (m_score 4 or more) but have not bought for a while (r_score 2
--   or less) in the latest scoring (gold.customer_rfm), the most valuable first: the win-back list.
SELECT customer_id,
       rfm_segment,
       r_score,
       f_score,
       m_score,
       recency_days,
       last_order_date,
       frequency,
       monetary,
       as_of_date
FROM ${gold}.customer_rfm
WHERE r_score <= 2 AND m_score >= 4
ORDER BY monetary DESC, recency_days DESC, customer_id
