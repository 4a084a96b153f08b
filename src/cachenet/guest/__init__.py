"""What a guest is told about its cache NIC: config drive network data and vendor data."""
