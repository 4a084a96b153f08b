"""The lease file dnsmasq starts with: a lease for every reservation (pure file work)."""

from cachenet.dhcp.leases import read_leases, reservations_in, seed_lease_file

A, B, GONE = "fa:16:3e:00:00:0a", "fa:16:3e:00:00:0b", "fa:16:3e:00:00:0c"


def test_every_reservation_gets_a_seed_and_a_granted_lease_is_kept(tmp_path):
    leases = tmp_path / "leases"
    leases.write_text(
        f"1900000000 {A} 10.0.0.10 cache-a 01:{A}\n"  # granted by this dnsmasq: kept
        f"1900000000 {B} 10.0.0.99 * *\n"  # B's address changed since: replaced
        f"1900000000 {GONE} 10.0.0.12 * *\n"  # released: dropped
        f"0 {GONE} 10.0.0.12 * *\n"
    )
    seed_lease_file(leases, {A: "10.0.0.10", B: "10.0.0.11"})
    assert leases.read_text() == (f"1900000000 {A} 10.0.0.10 cache-a 01:{A}\n0 {B} 10.0.0.11 * *\n")


def test_seeds_are_not_listed_as_leases(tmp_path):
    leases = tmp_path / "leases"
    seed_lease_file(leases, {A: "10.0.0.10"})
    assert leases.read_text() == f"0 {A} 10.0.0.10 * *\n"
    assert read_leases(leases, []) == []


def test_reservations_are_read_from_cachenet_s_own_files_only(tmp_path):
    (tmp_path / "6c2f1e0a-1b7e-4a4e-9b1e-3c7d9e8f0a11.conf").write_text(
        f"{A.upper()},10.0.0.10,cache-6c2f1e0a1\n"
    )
    (tmp_path / "operator.conf").write_text(f"{B},10.0.0.11\n")
    assert reservations_in(tmp_path) == {A: "10.0.0.10"}
