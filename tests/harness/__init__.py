"""Real components for the tests: network namespaces, veth pairs, Open vSwitch."""
