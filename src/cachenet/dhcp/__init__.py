"""DHCP for the cache subnet: dnsmasq in static-only mode, reservations synced from the store."""
