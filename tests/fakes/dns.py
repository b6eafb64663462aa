"""A DNS server on loopback that answers from a fixed table: the attacker's own domain, whose
names resolve to loopback, private and metadata addresses. core/outbound resolves through it
when OUTBOUND_DNS_SERVERS names it.

Run: python -m tests.fakes.dns --port N --record NAME=TYPE:VALUE [--record ...]
(prints "listening" when ready). TYPE is A, AAAA or CNAME; a name may have several records.
A name not in the table is NXDOMAIN; a CNAME is answered with its target's records, as a
recursive resolver would.
"""

import argparse
import socket
from collections import defaultdict

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset


def parse_records(entries):
    table = defaultdict(list)
    for entry in entries:
        name, _, typed = entry.partition("=")
        record_type, _, value = typed.partition(":")
        table[name.lower().rstrip(".")].append((record_type.upper(), value))
    return table


def records_for(table, name, record_type, depth=0):
    """The rrsets answering (name, record_type): CNAMEs followed, at most a few deep."""
    entries = table.get(name.to_text().rstrip(".").lower(), [])
    aliases = [value for kind, value in entries if kind == "CNAME"]
    if aliases and depth < 5:
        target = dns.name.from_text(aliases[0])
        alias = dns.rrset.from_text(name, 60, "IN", "CNAME", target.to_text())
        return [alias, *records_for(table, target, record_type, depth + 1)]
    values = [value for kind, value in entries if kind == record_type]
    return [dns.rrset.from_text(name, 60, "IN", record_type, *values)] if values else []


def answer(table, wire):
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    question = query.question[0]
    if question.name.to_text().rstrip(".").lower() not in table:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()
    response.answer.extend(records_for(table, question.name, dns.rdatatype.to_text(question.rdtype)))
    return response.to_wire()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", action="append", default=[])
    args = parser.parse_args()
    table = parse_records(args.record)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((args.host, args.port))
    print("listening", flush=True)
    while True:
        wire, client = server.recvfrom(4096)
        try:
            server.sendto(answer(table, wire), client)
        except Exception:  # a malformed query gets no answer, as from a real server
            continue


if __name__ == "__main__":
    main()
