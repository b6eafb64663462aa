"""Drive tests/fakes/dns.py: a nameserver for the attacker's domain, hostile.test."""

from core.devredis import free_port
from tests.fakes.outside_fake import start_process, stop_process

# What an attacker's own domain can make its names resolve to.
HOSTILE_RECORDS = {
    "loopback.hostile.test": ["A:127.0.0.1"],
    "metadata.hostile.test": ["A:169.254.169.254"],
    "private.hostile.test": ["A:10.0.0.5"],
    "cgnat.hostile.test": ["A:100.64.0.7"],
    "mixed.hostile.test": ["A:93.184.216.34", "A:10.0.0.5"],  # one bad answer among good ones
    "v6loopback.hostile.test": ["AAAA:::1"],
    "nat64.hostile.test": ["AAAA:64:ff9b::a9fe:a9fe"],
    "mapped.hostile.test": ["AAAA:::ffff:10.0.0.5"],
    "sixtofour.hostile.test": ["AAAA:2002:a9fe:a9fe::1"],
    "alias.hostile.test": ["CNAME:metadata.hostile.test."],
    "public.hostile.test": ["A:93.184.216.34"],  # the control: a public address
    # The outside stand-in (127.0.0.2) under names of its own: other origins, same server.
    "outside.hostile.test": ["A:127.0.0.2"],
    "elsewhere.hostile.test": ["A:127.0.0.2"],
}


class FakeDns:
    def __init__(self, records=None):
        self.port = free_port()
        arguments = []
        for name, values in (records or HOSTILE_RECORDS).items():
            arguments += [argument for value in values for argument in ("--record", f"{name}={value}")]
        self.process = start_process("tests.fakes.dns", "--port", str(self.port), *arguments)
        self.server = f"127.0.0.1:{self.port}"

    def stop(self):
        stop_process(self.process)
