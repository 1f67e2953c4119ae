/** The pages the download server shows: small, no external assets, readable on a phone. */

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${esc(title)}</title>
<style>body{font:17px -apple-system,system-ui,sans-serif;margin:0 auto;max-width:34em;padding:1.2em;color:#111;line-height:1.45}
h1{font-size:1.4em}ol li{margin:.4em 0}.install{display:block;text-align:center;background:#0a64d6;color:#fff;padding:.9em;border-radius:.6em;text-decoration:none;font-weight:600;margin:1.4em 0}
.muted{color:#555;font-size:.9em}ul{padding-left:1.2em}</style></head><body>${body}</body></html>`;
}

export interface InstallPageOptions {
  organization: string;
  user: string;
  payloads: string[];
  installHref: string;
  expires: string;
}

export function installPage(o: InstallPageOptions): string {
  return layout(
    `${o.organization}: mail profile`,
    `<h1>${esc(o.organization)}: mail settings for ${esc(o.user)}</h1>
<p>This installs a configuration profile on your iPhone or iPad. It holds:</p>
<ul>${o.payloads.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>
<a class="install" id="install" href="${esc(o.installHref)}">Install profile</a>
<ol>
<li>Tap <b>Install profile</b>, then <b>Allow</b> to download it.</li>
<li>Open <b>Settings</b> and tap <b>Profile Downloaded</b> near the top (within 8 minutes).</li>
<li>Tap <b>Install</b> and enter your device passcode.</li>
<li>For the certificate authority: <b>Settings → General → About → Certificate Trust Settings</b>, and switch it on.</li>
</ol>
<p class="muted">This link works once and expires ${esc(o.expires.slice(0, 16).replace('T', ' '))} UTC.</p>`,
  );
}

export function messagePage(title: string, text: string): string {
  return layout(title, `<h1>${esc(title)}</h1><p>${esc(text)}</p>`);
}
