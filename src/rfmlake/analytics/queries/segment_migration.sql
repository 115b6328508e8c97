-- title: Migration between segments
-- description: How many customers moved from which RFM segment to which between the two latest
--   as_of dates (gold.segment_migration), with the share of the from-segment that made each move;
--   '(new)' = not scored at the earlier date, '(gone)' = not scored at the later one.
WITH latest AS (
    SELECT *
    FROM ${gold}.segment_migration
    WHERE dimension = 'rfm_segment'
      AND to_as_of_date = (SELECT max(to_as_of_date) FROM ${gold}.segment_migration WHERE dimension = 'rfm_segment')
)
SELECT from_as_of_date,
       to_as_of_date,
       coalesce(from_segment, '(new)') AS from_segment,
       coalesce(to_segment, '(gone)') AS to_segment,
       customers,
       round(CAST(customers AS double) / sum(customers) OVER (PARTITION BY from_segment), 4) AS share_of_from
FROM latest
ORDER BY 3, 5 DESC, 4
