{#- Fails on each row where the boolean SQL `expression` is false (null counts as false). -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not coalesce({{ expression }}, false)
{% endtest %}
