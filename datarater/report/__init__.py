"""Reporting for one run: plots (matplotlib, Agg), score files and histograms,
AUROC / detection metrics of scores against the ground-truth corruption flag.

Above the framework (datarater.train) and below the methods, which call it
from their `finalize`. matplotlib is loaded by the first plot (`plots.pyplot`)
and sklearn only inside the metrics that need it, so importing this package (or
`plots`) loads neither.
"""
