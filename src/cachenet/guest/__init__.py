"""What a guest is told about its cache NIC: network_data.json, vendordata."""
