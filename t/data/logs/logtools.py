"""logtools.py - run Debian's pflogsumm and fail2ban-regex on a mail log and
reduce their reports to the figures that do not depend on timing: the
counts, bytes, senders and recipients pflogsumm prints, and fail2ban's
"Lines: N, Matched: M" per filter.  Used by t/NN-logs.t and
t/data/logs/make-postfix-log."""
import re
import subprocess

PFLOGSUMM = "/usr/sbin/pflogsumm"
FAIL2BAN_REGEX = "/usr/bin/fail2ban-regex"
# the stock filters as Debian's jails name them: jail -> filter argument
FAIL2BAN_FILTERS = {
    "postfix": "postfix",                       # mode "more" (the default)
    "postfix-sasl": "postfix[mode=auth]",
    "postfix-rbl": "postfix[mode=rbl]",
    "postfix-aggressive": "postfix[mode=aggressive]",
}
# pflogsumm's tables whose rows are compared (timing columns dropped)
TABLES = ("Host/Domain Summary: Message Delivery",
          "Host/Domain Summary: Messages Received",
          "Senders by message count", "Recipients by message count",
          "Senders by message size", "Recipients by message size")


def pflogsumm(path):
    r = subprocess.run([PFLOGSUMM, path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def fail2ban(path, filter_arg):
    r = subprocess.run([FAIL2BAN_REGEX, "--raw", "--print-all-matched", path, filter_arg],
                       stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=300)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def number(text):
    """pflogsumm's "123", "456k", "2m" as an int (k and m are 1024s)."""
    m = re.fullmatch(r"(\d+)([km]?)", text)
    if not m:
        return text
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2)]


def pflogsumm_figures(report):
    """{"totals": {name: n}, table title: {row key: [numbers]}}."""
    figures = {"totals": {}}
    section = "totals"                      # "Grand Totals" come first
    for line in report.splitlines():
        if section == "totals" and line.startswith("Per-"):
            section = ""
        m = re.fullmatch(r"\s*(\d+[km]?)\s+(.*?)(?:\s+\((\d+)%?\s*\w*\))?\s*", line)
        if section == "totals":
            if not m:
                continue
            name = re.sub(r"\s*\(.*\)$", "", m.group(2)).strip()
            figures["totals"][name] = number(m.group(1))
            d = re.search(r"\((\d+)\s+deferrals\)", line)
            if d:
                figures["totals"]["deferrals"] = int(d.group(1))
            continue
        title = next((t for t in TABLES if line.startswith(t)), None)
        if title:
            section = title
            figures[section] = {}
            continue
        if line and not line.startswith(" ") and not line.startswith("-") and section:
            section = ""                    # another section begins
            continue
        cells = line.split()
        if section and cells and re.fullmatch(r"\d+[km]?", cells[0]):
            values = [number(c) for c in cells if re.fullmatch(r"\d+[km]?", c)]
            if section == "Host/Domain Summary: Message Delivery":
                values = values[:3]         # sent cnt, bytes, defers (not delays)
            figures[section][cells[-1]] = values
    return figures


def fail2ban_counts(report):
    """(lines, matched) from fail2ban-regex's summary."""
    m = re.search(r"Lines:\s*(\d+) lines,.*?(\d+) matched", report)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2))


def fail2ban_matched(report):
    """The lines fail2ban-regex matched, sorted, without what differs from
    one MTA or run to the next (time, host, pid, queue id or NOQUEUE)."""
    lines = []
    block = report.split("|- Matched line(s):", 1)
    for line in (block[1].split("\n`-", 1)[0].splitlines() if len(block) == 2 else []):
        line = re.sub(r"^\|\s+", "", line)
        line = re.sub(r"^\w+ +\d+ [\d:]+ \S+ ", "", line)
        line = re.sub(r"\[\d+\]: ", "[PID]: ", line, count=1)
        line = re.sub(r"\]: (?:[0-9A-F]{6,}|NOQUEUE): ", "]: ID: ", line, count=1)
        if line:
            lines.append(line)
    return sorted(lines)
