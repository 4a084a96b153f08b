"""Plain libvirt hosts: attach/detach the cache NIC, and the agent that does it on events."""
