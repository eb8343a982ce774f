import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def metric_value(score, metric) -> str:
    """A score as the metric's schema says to read it: ratios as percentages."""
    if score is None:
        return "–"
    return f"{100 * score.value:.2f}" if metric.unit == "ratio" else f"{score.value:.2f}"


@register.filter
def metric_ci(score, metric) -> str:
    if score is None or score.ci_low is None or score.ci_high is None:
        return ""
    scale = 100 if metric.unit == "ratio" else 1
    return f"[{scale * score.ci_low:.1f}, {scale * score.ci_high:.1f}]"
