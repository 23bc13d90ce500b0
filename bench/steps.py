#!/usr/bin/env python3
# steps.py - the latency of each SMTP step of one client at concurrency 1:
# connect, wait for the banner, EHLO, MAIL, RCPT, DATA, the end of data,
# QUIT, and the close after the 221 (the time until the server's end of
# the connection is closed: read() returns 0).  Each message is a new
# connection; the table gives each step's median in microseconds over N
# connections per server, and the median of the total.
#
#   steps.py PORT[,PORT...] [N] [--host H] [--rcpt ADDR] [--labels A,B] [--warm W] [--mean]
#
#   PORT     the SMTP port (postern-accept or Postfix's smtpd); with
#            several, the connections alternate between them (one to
#            each in turn), so that both see the same machine, and the
#            table has a column for each
#   N        connections per port (default 200), after W unmeasured
#            ones (default 5)
#   --rcpt   the recipient (default u1@bench.test, the bench instances');
#            several, comma-separated, are asked one after another in each
#            session, steps rcpt, rcpt2, rcpt3... (the first RCPT of a
#            session against the next)
#   --helo, --from  the EHLO name and the sender (default steps.test,
#            steps@bench.test; bench/restrictions gives names its DNS knows)
#   --labels the columns' names (default: the ports)
#   --mean   a column of means beside each median
#   --no-mail  connect, EHLO and QUIT only (connbench's session)
#
# A median is what to compare: the machine is shared, and a mean moves
# with every stall.  bench/run's "steps" test runs this against postern
# and Postfix at once.
import argparse
import socket
import statistics
import sys
import time

STEPS = ['banner', 'ehlo', 'mail', 'rcpt', 'data', 'eod', 'quit', 'close']


def read_reply(f):
    """One SMTP reply (its last line); b'' when the connection ends."""
    while True:
        line = f.readline()
        if line[3:4] != b'-':
            return line


HELO, SENDER = 'steps.test', 'steps@bench.test'


def rcpt_step(i):
    return 'rcpt' if i == 0 else f'rcpt{i + 1}'


def one_session(host, port, rcpt, mail=True):
    """Time each step of one session; a dict step -> seconds."""
    dialog = [('ehlo', b'EHLO ' + HELO.encode() + b'\r\n'),
              ('mail', b'MAIL FROM:<' + SENDER.encode() + b'>\r\n'),
              ('data', b'DATA\r\n'),
              ('eod', b'Subject: steps\r\n\r\nhello\r\n.\r\n'),
              ('quit', b'QUIT\r\n')]
    dialog[2:2] = [(rcpt_step(i), b'RCPT TO:<' + address.encode() + b'>\r\n')
                   for i, address in enumerate(rcpt.split(','))]
    if not mail:
        dialog = [dialog[0], dialog[-1]]
    times = {}
    start = time.perf_counter()
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile('rb')
    reply = read_reply(f)
    last = time.perf_counter()
    times['banner'] = last - start
    if not reply.startswith(b'220'):
        raise SystemExit(f'steps.py: banner {reply!r}')
    for name, command in dialog:
        s.sendall(command)
        reply = read_reply(f)
        now = time.perf_counter()
        times[name] = now - last
        last = now
        if not reply[:1] in (b'2', b'3'):
            raise SystemExit(f'steps.py: {name}: {reply!r}')
    f.read()
    now = time.perf_counter()
    times['close'] = now - last
    s.close()
    return times


def main():
    global HELO, SENDER
    ap = argparse.ArgumentParser(description='per-step SMTP latency at concurrency 1')
    ap.add_argument('ports')
    ap.add_argument('n', type=int, nargs='?', default=200)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--rcpt', default='u1@bench.test')
    ap.add_argument('--labels', default='')
    ap.add_argument('--helo', default=HELO)
    ap.add_argument('--from', dest='sender', default=SENDER)
    ap.add_argument('--warm', type=int, default=5)
    ap.add_argument('--mean', action='store_true')
    ap.add_argument('--no-mail', action='store_true')
    args = ap.parse_args()
    HELO, SENDER = args.helo, args.sender
    ports = [int(p) for p in args.ports.split(',')]
    labels = args.labels.split(',') if args.labels else [str(p) for p in ports]
    if len(labels) != len(ports):
        ap.error('as many labels as ports')
    for _ in range(args.warm):
        for port in ports:
            one_session(args.host, port, args.rcpt, not args.no_mail)
    runs = {port: [] for port in ports}
    for _ in range(args.n):
        for port in ports:
            runs[port].append(one_session(args.host, port, args.rcpt, not args.no_mail))
    head = f"{'µs':8s}"
    for label in labels:
        head += f' {label:>10s}' + (f" {'mean':>8s}" if args.mean else '')
    print(head + f'   (medians of {args.n} connections each)')
    rcpts = [rcpt_step(i) for i in range(len(args.rcpt.split(',')))]
    steps = STEPS[:3] + rcpts + STEPS[4:] if not args.no_mail else ['banner', 'ehlo', 'quit', 'close']
    for step in steps + ['total']:
        line = f'{step:8s}'
        for port in ports:
            if step == 'total':
                values = [sum(r.values()) * 1e6 for r in runs[port]]
            else:
                values = [r[step] * 1e6 for r in runs[port]]
            line += f' {statistics.median(values):10.0f}'
            if args.mean:
                line += f' {statistics.mean(values):8.0f}'
        print(line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
