#!/usr/bin/env python3
"""Prints a free TCP port on 127.0.0.1 for a service a script is about to start.

The port is below the kernel's ephemeral range (net.ipv4.ip_local_port_range): a port the
kernel hands out for a bind to 0 can be taken as the source port of an outgoing connection
before the service that was given it binds it ("Address already in use").
"""
import random
import socket

low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
while True:
    port = random.randint(10000, max(low, 10001) - 1)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
