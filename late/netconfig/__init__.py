"""Network configuration: cloud-init v1/v2, OpenStack ``network_data.json`` and EC2 NIC
metadata parsed into one typed model (:mod:`.model`), rendered as systemd-networkd
files (:mod:`.networkd`) and written all-or-nothing (:mod:`.apply`).

Every value is checked as it is parsed (addresses by :mod:`ipaddress`, names and MAC
addresses by pattern, numbers by type), so nothing a seed says can break the line
structure of a networkd file. What cannot be rendered is a :class:`Problem` naming
the key; one problem means nothing is written.
"""
