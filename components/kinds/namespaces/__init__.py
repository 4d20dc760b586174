"""The namespaces kind: which Linux namespaces a workload gets privately (spec, expect, render, checks, kind)."""
