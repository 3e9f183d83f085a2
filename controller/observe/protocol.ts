// Owns the marker protocol of natsfleet's remote scripts: a script prints marker lines (the `echo`s
// are built here) and the controller cuts its output at them (parsed here), so one remote command can
// answer many questions. A marker line is `<channel><name>[ <arg>]`, on a line of its own:
//   observe  `@@natsfleet NAME [ARG]`  one section per fact (fact-table.ts), last `@@natsfleet end`
//   verify   `@@NAME [ARG]`            `@@varz`, `@@jsz`, `@@healthz timeout` (apply/commands.ts)
//   step     `@@step NAME`             printed by apply's install script before each step
// Inside a section, a multi-URL answer ends each response with `@@http CODE` (000 when nothing answered).
import { shQuote } from '../shell/quote.js';

export const MARK = '@@natsfleet';
export const HTTP_MARK = '@@http';

/** The channels: the text a marker line starts with, before the section's name. */
export const OBSERVE = `${MARK} `;
export const VERIFY = '@@';
export const STEP = '@@step ';
/** The last section of observe's output: output without it is incomplete. */
export const END = 'end';

export const markerLine = (channel: string, name: string, arg = '') => `${channel}${name}${arg ? ` ${arg}` : ''}`;

/** Single-quoted even when it is a plain word, so every marker reads `echo '...'` in every script. */
const quoted = (text: string) => {
  const q = shQuote(text);
  return q === text ? `'${text}'` : q;
};

/** The `echo` of a marker line. */
export const echoMarker = (channel: string, name: string, arg = '') => `echo ${quoted(markerLine(channel, name, arg))}`;

/**
 * The `echo` of a marker line whose argument is a shell expression expanded on the host (such as
 * `$p`): double-quoted, so `expr` must be natsfleet's own text, never a value from a manifest.
 */
export const echoMarkerOf = (channel: string, name: string, expr: string) =>
  `echo "${markerLine(channel, name, expr)}"`;

export interface Section {
  name: string;
  arg: string;
  /** The lines after the marker line, up to the next one. */
  body: string[];
}

/** Cuts `output` at the marker lines of `channel`, in order; text before the first marker is dropped. */
export function parseMarked(output: string, channel: string): Section[] {
  const out: Section[] = [];
  for (const line of output.split('\n')) {
    if (line.startsWith(channel)) {
      const rest = line.slice(channel.length);
      const sp = rest.indexOf(' ');
      out.push({ name: sp < 0 ? rest : rest.slice(0, sp), arg: sp < 0 ? '' : rest.slice(sp + 1), body: [] });
    } else if (out.length > 0) {
      out[out.length - 1].body.push(line);
    }
  }
  return out;
}

/** Marked output read by section name (the first section of that name). */
export class Marked {
  readonly sections: Section[];
  constructor(output: string, channel: string) {
    this.sections = parseMarked(output, channel);
  }
  has(name: string): boolean {
    return this.sections.some((s) => s.name === name);
  }
  /** Every section of that name (facts asked once per path). */
  all(name: string): Section[] {
    return this.sections.filter((s) => s.name === name);
  }
  /** The argument of the marker line, '' when absent. */
  arg(name: string): string {
    return this.sections.find((s) => s.name === name)?.arg ?? '';
  }
  /** The body's lines, none when the section is absent. */
  lines(name: string): string[] {
    return this.sections.find((s) => s.name === name)?.body ?? [];
  }
  /** The body as text (undefined when the section is absent). */
  raw(name: string): string | undefined {
    return this.sections.find((s) => s.name === name)?.body.join('\n');
  }
  /** The body as trimmed text ('' when the section is absent). */
  text(name: string): string {
    return this.lines(name).join('\n').trim();
  }
}

/** Most that one multi-URL answer may hold (beyond, it is cut: the controller's memory stays bounded). */
export const MAX_HTTP_ANSWER_BYTES = 4 * 1024 * 1024;

/**
 * Sets $n to a nonce drawn on the host for this run: the kernel's random UUID, read by the shell itself (no
 * process); 12 bytes of /dev/urandom through od where /proc has no such file.
 */
export const NONCE =
  '{ read -r n < /proc/sys/kernel/random/uuid; } 2>/dev/null || ' + "n=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \\n')";

/** One group of URLs asked together: over a Unix socket (the Docker Engine API's) or TCP, with or without headers. */
export interface UrlGroup {
  /** A Unix socket to connect to instead of the URL's host (which then only names it). */
  socket?: string;
  /** Print each answer's status line and headers before its body (curl's -i). */
  headers?: boolean;
  /** Plain http:// URLs, natsfleet's own (never a value from a manifest that was not checked). */
  urls: readonly string[];
}

/** Seconds one URL may take, connection included (curl's -m). */
const HTTP_TIMEOUT_SEC = 3;

/**
 * natsfleet's HTTP client in Perl, for its host scripts: perl-base is Essential on Debian and Ubuntu
 * (natsfleet's hosts), and perl without modules starts in 1.2 ms of CPU where curl, linked to some thirty
 * libraries, takes 5.5 (measured on the sandbox's Debian). `ask(SOCKET, HOST, PORT, METHOD, PATH, TIMEOUT,
 * BODY)` returns (status, headers, body), status 000 when nothing answered in time: over the Unix socket
 * SOCKET when it is not empty (the Docker Engine API's), else TCP to an IPv4 HOST; HTTP/1.0 (the server closes
 * the connection, no chunked body; one is decoded all the same); BODY, when given, sent as JSON; an answer
 * over MAX_HTTP_ANSWER_BYTES is none. The socket calls are Perl's own (the Socket module costs 5 ms more):
 * SOCK_STREAM is 2 on MIPS and 1 elsewhere, known by perl's library path.
 */
export const PERL_ASK = `my $st = grep(m{/mips}, @INC) ? 2 : 1;
$SIG{PIPE} = "IGNORE";
sub ask {
  my ($s, $h, $p, $m, $path, $t, $body) = @_;
  my $r = "";
  my $ok = eval {
    local $SIG{ALRM} = sub { die };
    alarm $t;
    if (length $s) { socket(S, 1, $st, 0) && connect(S, pack("S Z108", 1, $s)) or die }
    else {
      my @a = $h =~ /^(\\d+)\\.(\\d+)\\.(\\d+)\\.(\\d+)$/ or die;
      socket(S, 2, $st, 0) && connect(S, pack("S n C4 x8", 2, $p, @a)) or die;
    }
    my $q = "$m $path HTTP/1.0\\r\\nHost: " . (length($s) ? $h : "$h:$p") . "\\r\\n" . (defined $body
      ? "Content-Type: application/json\\r\\nContent-Length: " . length($body) . "\\r\\n\\r\\n$body" : "\\r\\n");
    while (length $q) { my $w = syswrite(S, $q) or die; substr($q, 0, $w) = "" }
    while (1) {
      my $k = sysread(S, $r, 65536, length $r);
      defined $k or die;
      last unless $k;
      length $r > ${MAX_HTTP_ANSWER_BYTES} and die;
    }
    1;
  };
  alarm 0;
  close S;
  my $e = index $r, "\\r\\n\\r\\n";
  return ("000", "", "") unless $ok && $e >= 0 && substr($r, 0, $e) =~ m{^HTTP/\\d\\.\\d (\\d\\d\\d)};
  my ($c, $hd, $b) = ($1, substr($r, 0, $e), substr($r, $e + 4));
  if ($hd =~ /^transfer-encoding:[ \\t]*chunked/mi) {
    my $d = "";
    while ($b =~ s/^([0-9a-fA-F]+)[^\\n]*\\n//) {
      my $z = hex $1 or last;
      $d .= substr($b, 0, $z, "");
      $b =~ s/^\\r?\\n//;
    }
    $b = $d;
  }
  return ($c, $hd, $b);
}
`;

/**
 * The same answers as the curl of httpGroups, asked with PERL_ASK. Arguments: the nonce, then `H|SOCKET|URL`
 * per URL (H `i` for headers). What it prints is bounded as head bounds curl's (MAX_HTTP_ANSWER_BYTES).
 */
const PERL_HTTP = `${PERL_ASK}my ($n, @u) = @ARGV;
binmode STDOUT;
my $left = ${MAX_HTTP_ANSWER_BYTES};
for (@u) {
  my ($i, $s, $url) = split /\\|/, $_, 3;
  my ($code, $hd, $b) = ("000", "", "");
  ($code, $hd, $b) = ask($s, $1, $2 || 80, "GET", $3, ${HTTP_TIMEOUT_SEC})
    if $url =~ m{^http://([^/:]+)(?::(\\d+))?(/[!-~]*)$};
  my $a = ($code eq "000" ? "" : $i ? "$hd\\r\\n\\r\\n$b" : $b) . "\\n${HTTP_MARK.replace(/@/g, '\\@')}-$n $code\\n";
  print substr($a, 0, $left);
  $left -= length $a;
  last if $left <= 0;
}`;

/** The shell test a script's Perl branch runs under (else its curl branch). */
export const HAS_PERL = 'command -v perl >/dev/null 2>&1';

/** PERL_HTTP as one shell word, quoted once (every observe script of a sweep carries it). */
const PERL_HTTP_WORD = shQuote(PERL_HTTP);

/** Whether the Perl client asks `g` as curl would: a Unix socket, or a TCP URL whose host is an IPv4 address. */
const perlAsks = (g: UrlGroup) =>
  g.urls.every((u) =>
    (g.socket ? /^http:\/\/[^/:]+\/[!-~]*$/ : /^http:\/\/\d+\.\d+\.\d+\.\d+(:\d+)?\/[!-~]*$/).test(u),
  );

/**
 * ONE process asking every URL of every group in order: Perl (PERL_HTTP) where the host has it, else ONE
 * curl (groups joined by `--next`). What the URLs answer is not ours (a NATS image, a server at httpBind,
 * container labels in the Docker API): so each response is followed by a mark with a nonce drawn on the
 * host for this run (a body cannot forge it), and the whole answer, nonce first, travels base64-encoded on
 * one line (a body cannot forge an observe section either).
 */
export function httpGroups(groups: readonly UrlGroup[]): string {
  const curl =
    'curl ' +
    groups
      .map((g) =>
        [
          `-s -m ${HTTP_TIMEOUT_SEC}`,
          ...(g.headers ? ['-i'] : []),
          ...(g.socket ? [`--unix-socket ${shQuote(g.socket)}`] : []),
          `-w "\\n${HTTP_MARK}-$n %{http_code}\\n"`,
          ...g.urls.map(shQuote),
        ].join(' '),
      )
      .join(' --next ');
  const perl = `perl -e ${PERL_HTTP_WORD} "$n" ${groups
    .flatMap((g) => g.urls.map((u) => shQuote(`${g.headers ? 'i' : ''}|${g.socket ?? ''}|${u}`)))
    .join(' ')}`;
  // Perl bounds what it prints itself; curl's answer is cut by head.
  const cut = `head -c ${MAX_HTTP_ANSWER_BYTES}`;
  const ask = groups.every(perlAsks)
    ? `if ${HAS_PERL}; then ${perl}; else ${curl} | ${cut}; fi 2>/dev/null`
    : `${curl} 2>/dev/null | ${cut}`;
  return `{ ${NONCE}; echo "$n"; ${ask}; } | base64 -w0; echo`;
}

/** httpGroups with one group. */
export const httpMany = (group: UrlGroup) => httpGroups([group]);

/** Splits httpGroups' answer into [status, body] per URL, in request order. */
export function httpAnswers(encoded: string): { status: number; body: string }[] {
  const text = Buffer.from(encoded.trim(), 'base64').toString('utf8');
  const nl = text.indexOf('\n');
  const nonce = text.slice(0, nl);
  // od's 24 hex digits, or the kernel's random UUID.
  if (nl < 0 || !/^([0-9a-f]{24}|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})$/.test(nonce)) return [];
  const out: { status: number; body: string }[] = [];
  // Each answer ends with `\n@@http-NONCE CODE\n`: found by indexOf, not a regular expression
  // built per host (a tenth of parsing a sweep's answers).
  const mark = `${HTTP_MARK}-${nonce} `;
  let start = nl + 1;
  for (let pos = start, i = text.indexOf(mark, pos); i >= 0; i = text.indexOf(mark, pos)) {
    const code = i + mark.length;
    const status = text.slice(code, code + 3);
    if (!/^\d{3}$/.test(status)) {
      pos = i + 1;
      continue;
    }
    out.push({ status: Number(status), body: text.slice(start, i > start && text[i - 1] === '\n' ? i - 1 : i) });
    start = pos = text[code + 3] === '\n' ? code + 4 : code + 3;
  }
  return out;
}
