"""The demonstration on one machine: a cache network with real VMs (also used by tests)."""
