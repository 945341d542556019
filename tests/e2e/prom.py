"""A strict-enough parser for the Prometheus text exposition format (0.0.4)."""

import math
import re

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


class ParseError(Exception):
    pass


def _parse_labels(s):
    labels = {}
    pos = 0
    s = s.strip()
    while pos < len(s):
        m = _LABEL.match(s, pos)
        if not m:
            raise ParseError("bad labels %r" % s)
        labels[m.group(1)] = m.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        pos = m.end()
    return labels


def _parse_value(v):
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    if v == "NaN":
        return math.nan
    return float(v)


class Metrics:
    def __init__(self, text):
        self.text = text
        self.samples = []  # (name, labels dict, value)
        self.types = {}
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 4 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3].strip()
                continue
            m = _SAMPLE.match(line.strip())
            if not m:
                raise ParseError("line %d: not a sample: %r" % (i, line))
            labels = _parse_labels(m.group(3)) if m.group(3) else {}
            try:
                value = _parse_value(m.group(4))
            except ValueError:
                raise ParseError("line %d: bad value: %r" % (i, line))
            self.samples.append((m.group(1), labels, value))

    def find(self, name, **labels):
        """All samples named `name` whose labels include `labels`."""
        return [(l, v) for n, l, v in self.samples if n == name and all(l.get(k) == str(x) for k, x in labels.items())]

    def has(self, name):
        return any(n == name for n, _, _ in self.samples)

    def sum(self, name, **labels):
        """Sum of the matching samples (0 when there are none)."""
        return sum(v for _, v in self.find(name, **labels))

    def value(self, name, **labels):
        """The sum over matching series, or None when the metric has no matching sample."""
        f = self.find(name, **labels)
        if not f:
            return None
        return sum(v for _, v in f)

    def histogram(self, name, **labels):
        """(buckets as sorted [(le, cumulative count)] summed over series, sum, count)."""
        buckets = {}
        for l, v in self.find(name + "_bucket", **labels):
            le = _parse_value(l["le"])
            buckets[le] = buckets.get(le, 0) + v
        return sorted(buckets.items()), self.value(name + "_sum", **labels), self.value(name + "_count", **labels)
