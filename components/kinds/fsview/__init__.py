"""The filesystem view kind: what a workload sees of the filesystem (spec, expect, render, checks, kind)."""
