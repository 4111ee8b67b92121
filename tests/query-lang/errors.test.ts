/**
 * Errors are data: each bad query yields issues with a code, a one-line message, the span
 * of the culprit and, where we can tell, a did-you-mean and a hint. Rendered as the query
 * line with a caret, or as JSON; through the CLI, exit 1 and never a stack trace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryError, renderIssueText, renderIssuesJson, type IssueCode } from '../../query-lang/errors.ts';
import { parseQuery } from '../../query-lang/run.ts';
import { retisQuery } from '../util/cli.ts';
import { compat } from '../util/paths.ts';
import { issuesOf, load, type Loaded } from './util.ts';

/** [query, code, message, the text the caret underlines, suggestions?] */
const CASES: [string, IssueCode, string, string, string[]?][] = [
  ['drops where reason = NETFILTER_DRP', 'unknown_value', "unknown drop reason 'NETFILTER_DRP' (neither the kernel nor the data know it); did you mean 'NETFILTER_DROP'?", 'NETFILTER_DRP', ['NETFILTER_DROP']],
  ['drops where devv = "eth0"', 'unknown_field', "unknown field 'devv'; did you mean 'dev'?", 'devv', ['dev']],
  ['drop | count', 'unknown_source', "unknown source 'drop'; did you mean 'drops'?", 'drop', ['drops']],
  ['evnts', 'unknown_source', "unknown source 'evnts'; did you mean 'events'?", 'evnts', ['events']],
  ['events where proto = udpp', 'unknown_value', "unknown protocol 'udpp'; did you mean 'udp'?", 'udpp', ['udp']],
  ['events where ct.state = establishd', 'unknown_value', "unknown ct.state 'establishd'; did you mean 'established'?", 'establishd', ['established']],
  ['events where dev = veth-ns0', 'unknown_value', "no dev 'veth-ns0' in the data; did you mean 'veth-ns01' or 'veth-ns02'?", 'veth-ns0'],
  ['events where probe = ovs_dp_upcall', 'unknown_value', "'ovs_dp_upcall' matches several probes: 'kretprobe:ovs_dp_upcall' or 'tp:openvswitch:ovs_dp_upcall'", 'ovs_dp_upcall'],
  ['events where nft.verdct = drop', 'unknown_field', "unknown field 'nft.verdct'; did you mean 'nft.verdict'?", 'nft.verdct', ['nft.verdict']],
  ['events | count by reason | where reson > 1', 'unknown_field', "unknown field 'reson'; did you mean 'reason'?", 'reson', ['reason']],
  ['events | count | where cnt > 1', 'unknown_field', "unknown field 'cnt'; did you mean 'count'?", 'cnt', ['count']],
  ['upcalls | stats latncy', 'unknown_field', "unknown field 'latncy'; did you mean 'latency'?", 'latncy', ['latency']],
  ['tracks where any(count(drop))', 'unknown_function', "unknown function 'count'", 'count'],
  ['tracks where anny(drop)', 'unknown_function', "unknown function 'anny'; did you mean 'any'?", 'anny', ['any']],
  ['events where any(drop)', 'misplaced_function', 'any() applies to the events of a packet series: use it on tracks', 'any'],
  ['events where dev = veth-ns01 adn proto = icmp', 'syntax_error', "unexpected 'adn'; did you mean 'and'?", 'adn'],
  ['events | cuont', 'syntax_error', "expected 'where', 'count', 'top', 'sort', 'fields', 'order', 'limit', 'stats', 'histogram' or 'pcap', found 'cuont'; did you mean 'count'?", 'cuont'],
  ['events where len >', 'syntax_error', 'expected a value or a name, found end of query', ' '],
  ['events where (len > 5', 'syntax_error', "expected ')', found end of query", ' '],
  ['events where len > 5)', 'syntax_error', "unexpected ')'", ')'],
  ['events where dev eth0', 'syntax_error', "expected a comparison after 'dev', found 'eth0'", 'eth0'],
  ['events | sort by ts', 'syntax_error', "unexpected 'by'", 'by'],
  ['events where x = "abc', 'unterminated_string', 'unterminated string', '"abc'],
  ['events | pcap /tmp/x', 'unexpected_character', "unexpected character '/'", '/'],
  ['events where len ~ 5', 'invalid_operator', "'~' does not apply to len (a number): ~ matches text against a glob", '~'],
  ['events where saddr < 10.0.0.1', 'invalid_operator', "'<' does not apply to saddr (an IP address): only = != ~ in between apply", '<'],
  ['events where len > "100"', 'type_mismatch', 'len is a number, not a string', '"100"'],
  ['events where proto = 17', 'type_mismatch', 'proto is text, not a number', '17'],
  ['events where ts > 5ms', 'type_mismatch', 'ts is a timestamp (ns), not a duration', '5ms'],
  ['events where len = dev', 'type_mismatch', 'cannot compare len (a number) with dev (text)', 'len = dev'],
  ['events | stats dev', 'type_mismatch', "stats needs a numeric field; 'dev' is text", 'dev'],
  ['events | histogram len every 1ms', 'type_mismatch', "histogram of 'len' needs a bucket width that is a positive whole number", '1ms'],
  ['events where saddr = 10.0.0.300', 'invalid_literal', "'10.0.0.300' is not an IPv4 address (each part is 0 to 255)", '10.0.0.300'],
  ['events where saddr in 10.0.0.0/40', 'invalid_literal', "'10.0.0.0/40': the prefix length must be 0 to 32", '10.0.0.0/40'],
  ['events where daddr = fe80::1::2', 'invalid_literal', "'fe80::1::2' is not an IPv6 address", 'fe80::1::2'],
  ['events where time > 2024-13-01', 'invalid_literal', "'2024-13-01' is not a valid date/time", '2024-13-01'],
  ['events | limit -1', 'invalid_literal', "'-1' is not a count: expected a whole number 0 or more", '-1'],
  ['events where 5 = 5', 'invalid_condition', 'a comparison needs a field on one side', '5 = 5'],
  ['events where "x"', 'invalid_condition', '"x" is a value, not a condition', '"x"'],
  ['events | sort | count', 'invalid_stage', 'nothing can follow sort: it must be the last stage', 'count'],
  ['events | count | sort', 'invalid_stage', 'sort needs events, tracks or upcalls, not aggregated rows', 'sort'],
  ['events | top 3', 'invalid_stage', 'top N needs a field: top N by FIELD', 'top 3'],
  ['events where port http', 'type_mismatch', 'port needs a port number', 'http'],
];

describe('issues', () => {
  let l: Loaded;
  beforeAll(async () => {
    l = await load([compat('test_events_packets.json')]);
  });
  afterAll(() => l.db.close());

  it.each(CASES)('%s → %s', async (q, code, message, underlined, suggestions) => {
    const issues = await issuesOf(l, q);
    expect(issues.length).toBeGreaterThan(0);
    const i = issues[0]!;
    expect(i.code).toBe(code);
    expect(i.message).toBe(message);
    expect(i.span).toBeDefined();
    const text = `${q} `.slice(i.span!.start, i.span!.end);
    expect(text).toBe(underlined);
    if (suggestions) expect((i as { suggestions?: string[] }).suggestions).toEqual(suggestions);
  });

  it('collects every issue of a query, not just the first', async () => {
    const issues = await issuesOf(l, 'events where devv = 1 and lenn > 2 | count by reasn');
    expect(issues.map((i) => [i.code, (i as { name?: string }).name])).toEqual([
      ['unknown_field', 'devv'],
      ['unknown_field', 'lenn'],
      ['unknown_field', 'reasn'],
    ]);
  });

  it('hints say what to type', async () => {
    const hint = async (q: string) => (await issuesOf(l, q))[0]?.hint;
    expect(await hint('events where dev eth0')).toBe('write dev = eth0');
    expect(await hint('events where ts > 5ms')).toBe('for time since the first event use elapsed: elapsed > 5ms');
    expect(await hint('events where proto = 17')).toBe('proto is a name (proto = udp); the protocol number is ip_proto: ip_proto = 17');
    expect(await hint('events | sort by ts')).toBe('`| sort` prints packet series; to order rows write `| order by FIELD`');
    expect(await hint('events | filter dev = x')).toBe('write `| where`');
    expect(await hint('select * from events')).toBe('wildcards go in a quoted glob: dev ~ "veth*"');
    expect(await hint('events where duration > 5ms')).toBe("'duration' is a field of tracks: tracks where duration ...");
    expect(await hint('tracks where dev_name = "x"')).toMatch(/^'dev_name' is a field of events; on tracks, ask about the series' events: any\(dev_name = \.\.\.\)/);
    expect(await hint('events | pcap /tmp/x')).toBe('quote file names and paths: pcap "/tmp/drops.pcapng"');
  });
});

describe('renderers', () => {
  const err = (q: string): QueryError => {
    try {
      parseQuery(q);
    } catch (e) {
      if (e instanceof QueryError) return e;
    }
    throw new Error('expected a QueryError');
  };

  it('text: the message, the query line, a caret under the span, the hint', () => {
    const e = err('drops where reason = NO_SOCKET |');
    expect(renderIssueText(e.issues[0]!, e.source, { prog: 'retis-query' })).toBe(
      [
        "retis-query: expected 'where', 'count', 'top', 'sort', 'fields', 'order', 'limit', 'stats', 'histogram' or 'pcap', found end of query",
        '  drops where reason = NO_SOCKET |',
        '                                  ^',
      ].join('\n'),
    );
  });

  it('text: multi-line queries show the right line', () => {
    const e = err('drops\n  where reason = NO_SOCKET\n  | count by, reason');
    const lines = renderIssueText(e.issues[0]!, e.source).split('\n');
    expect(lines[1]).toBe('    | count by, reason');
    expect(lines[2]).toBe('              ^');
  });

  it('json: one line per issue, with line and column', () => {
    const e = err('events where dev eth0');
    const j = JSON.parse(renderIssuesJson(e.issues, e.source)) as { error: Record<string, unknown> };
    expect(j.error).toEqual({
      code: 'syntax_error',
      expected: ['a comparison (= != < <= > >= ~)'],
      found: 'eth0',
      message: "expected a comparison after 'dev', found 'eth0'",
      hint: 'write dev = eth0',
      span: { start: 17, end: 21, line: 1, column: 18 },
    });
  });

  it('QueryError.message is the first issue', () => {
    expect(err('events |').message).toMatch(/^expected 'where'/);
  });
});

describe('through the command line', () => {
  const input = compat('test_events_packets.json');

  it('a bad query: exit 1, the caret display on stderr, nothing on stdout, no stack trace', () => {
    const r = retisQuery(['drops where reason = NETFILTER_DRP', input]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      [
        "retis-query: unknown drop reason 'NETFILTER_DRP' (neither the kernel nor the data know it); did you mean 'NETFILTER_DROP'?",
        '  drops where reason = NETFILTER_DRP',
        '                       ^^^^^^^^^^^^^',
        '  hint: quote a value to match it as written: reason = "NETFILTER_DRP"',
        '',
      ].join('\n'),
    );
  });

  it('a syntax error is reported before loading the inputs', () => {
    const r = retisQuery(['drops where', '/nonexistent/file.json']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^retis-query: expected 'not', '\(', a name or a value, found end of query\n/);
  });

  it('--format json: errors as JSON lines on stderr', () => {
    const r = retisQuery(['events where devv = 1', input, '--format', 'json']);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stderr) as { error: { code: string; suggestions: string[]; span: { column: number } } };
    expect(j.error.code).toBe('unknown_field');
    expect(j.error.suggestions).toEqual(['dev']);
    expect(j.error.span.column).toBe(14);
  });

  it('a bad input file: exit 1, one line', () => {
    const r = retisQuery(['events | count', '/nonexistent/file.json']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^retis-query: \/nonexistent\/file\.json: /);
  });

  it('bad --sql: exit 1, one line naming the cause', () => {
    const r = retisQuery(['--sql', 'SELEC 1', input]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^retis-query: query failed: Parser Error: syntax error at or near "SELEC"\n/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
