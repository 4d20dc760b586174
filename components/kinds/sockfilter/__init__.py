"""SocketFilter: systemd's cgroup eBPF address and bind filters per workload (kinds/sockfilter)."""
