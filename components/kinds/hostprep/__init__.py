"""Hypervisor host preparation (kvm, xen): spec, expect, render, checks, kind (plan)."""
