/** The pages the download server shows: small, no external assets, readable on a phone. */

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${esc(title)}</title>
<style>body{font:17px -apple-system,system-ui,sans-serif;margin:0 auto;max-width:34em;padding:1.2em;color:#111;line-height:1.45}
h1{font-size:1.4em}ol li{margin:.4em 0}.install,.step{display:block;box-sizing:border-box;width:100%;text-align:center;background:#0a64d6;color:#fff;padding:.9em;border:0;border-radius:.6em;text-decoration:none;font:600 1em -apple-system,system-ui,sans-serif;margin:1.4em 0}.step{background:#3a3a3c}h2{font-size:1.15em;margin-top:1.6em}
.muted{color:#555;font-size:.9em}ul{padding-left:1.2em}</style></head><body>${body}</body></html>`;
}

/** What the install page shows. */
export interface InstallPageOptions {
  organization: string;
  user: string;
  payloads: string[];
  /** The form action that installs the account profile (POST). */
  installAction: string;
  /** The trust profile's link; without it, the page has one step. */
  trustHref?: string;
  /** Why the root needs full TLS trust, when it does; without it, the page says nothing of TLS trust. */
  tlsTrustReason?: string;
  expires: string;
  usesLeft: number;
}

const DOWNLOAD_STEPS = `<li>Tap <b>Allow</b> to download it.</li>
<li>Open <b>Settings</b> and tap <b>Profile Downloaded</b> near the top (within 8 minutes).</li>
<li>Tap <b>Install</b> and enter your device passcode.</li>`;

/** The download page: the trust step (when there is one), then the account step. No scripts, no tracking. */
export function installPage(o: InstallPageOptions): string {
  const org = esc(o.organization);
  const trust = o.trustHref
    ? `<h2>Step 1: trust ${org}</h2>
<p>A small profile with only ${org}'s certificate authority. Your iPhone shows it as <b>Not Verified</b>, because it is
the profile that teaches your iPhone to recognise ${org}'s signature. Skip this step if you installed it before.</p>
<a class="step" id="trust" href="${esc(o.trustHref)}">Download the trust profile</a>
<ol>${DOWNLOAD_STEPS}</ol>
<h2>Step 2: your mail settings</h2>`
    : '';
  const tls = o.tlsTrustReason
    ? `<p>Then: <b>Settings → General → About → Certificate Trust Settings</b>, and switch on ${org}'s certificate authority. ${esc(o.tlsTrustReason)}</p>`
    : '';
  return layout(
    `${o.organization}: mail profile`,
    `<h1>${org}: mail settings for ${esc(o.user)}</h1>
${trust}<p>This installs a configuration profile on your iPhone or iPad. It holds:</p>
<ul>${o.payloads.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>
${o.trustHref ? `<p>With step 1 done, your iPhone shows this profile as <b>Verified</b>, signed by ${org}.</p>` : ''}
<form method="post" action="${esc(o.installAction)}"><button class="install" id="install" type="submit">Install profile</button></form>
<ol>${DOWNLOAD_STEPS}</ol>
${tls}<p class="muted">To remove it later: <b>Settings → General → VPN &amp; Device Management</b>, the profile, <b>Remove Profile</b>.</p>
<p class="muted">${o.usesLeft === 1 ? 'The Install button works once' : `The Install button works ${o.usesLeft} more times`}; the link expires ${esc(o.expires.slice(0, 16).replace('T', ' '))} UTC.</p>`,
  );
}

export function messagePage(title: string, text: string): string {
  return layout(title, `<h1>${esc(title)}</h1><p>${esc(text)}</p>`);
}
