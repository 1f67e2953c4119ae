/** Request targets that have stopped servers, for the hostile-target tests and the http-target fuzz property. */

/** The six targets that ended every server, as reported. */
export const REPORTED = ['http://[/', 'http://a:99999/', '//a:99999/ocsp', 'http://%zz/', 'http://@/', 'https://:80/'];

/** A generated set around them: every family the report names, several of each. */
export function hostileTargets(): string[] {
  const hosts = ['[', '[::1', '[::1]x', 'a b', '%', '%zz', '%00', 'a:b:c', '[zz::]', ':', '@', 'user@', 'u:p@', 'xn--', '..', '\u00ff', '[::1]:99999'];
  const ports = ['99999', '-1', '65536', 'abc', '1.5', '0x50', '80a'];
  const out = [...REPORTED];
  for (const h of hosts) out.push(`http://${h}/`, `https://${h}/ocsp`, `http://${h}/p/AAAAAAAAAAAAAAAAAAAAAA`);
  for (const p of ports) out.push(`http://a:${p}/`, `//a:${p}/crl/root.crl`, `http://127.0.0.1:${p}/scep?operation=GetCACaps`);
  out.push('ftp://a/', 'file:///etc/passwd', 'javascript:alert(1)', 'mailto:a@b', 'a:80', '*', 'localhost', '?x', '#x', '');
  out.push('/%', '/%zz', '/ocsp/%zz', '/ocsp/%E0%A4%A', '/p/%zz', '/p/%zz/install', '/crl/%00.crl', '/ca/%2e%2e.cer', '/scep?operation=%zz&message=%', '/scep?message=%E0');
  out.push('//', '///', '/..', '/./../..', '/p/../../etc/passwd', '//p/AAAAAAAAAAAAAAAAAAAAAA', '/\u00e9', '/\u202e');
  out.push('/' + 'a'.repeat(7000), '/ocsp/' + 'A'.repeat(9000), '/p/' + 'x'.repeat(20_000), 'http://a/' + 'b'.repeat(10_000), '/?' + 'q=1&'.repeat(3000));
  out.push('/\x00', '/a\x00b', '/a\rb', '/a\nX-Injected: 1', '/a\r\nX-Injected: 1', '/a\tb', '/a b', '/a\x7f', '/\x1b[31m');
  return out;
}

