/**
 * Names and addresses refuse what shows nothing or turns the text around (issue 28): every
 * Unicode format character, the C1 controls and the line and paragraph separators, named as
 * U+XXXX; letters of every script, combining marks and emoji stay.
 */
import test from 'ava';
import { assertEmail, printable } from '../../src/certs/email.js';
import { checkNameValue, hiddenCharacter } from '../../src/certs/name.js';
import { checkOrganization } from '../../src/certs/publication.js';

const code = (c: number) => `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
const HIDDEN = [
  ...Array.from({ length: 5 }, (_, i) => 0x200b + i), // zero-width space, non-joiner, joiner, LRM, RLM
  ...Array.from({ length: 5 }, (_, i) => 0x202a + i), // LRE, RLE, PDF, LRO, RLO
  ...Array.from({ length: 4 }, (_, i) => 0x2066 + i), // LRI, RLI, FSI, PDI
  0xfeff, 0x061c, 0x00ad, 0x2060, 0x180e, 0xfff9, 0xe0001, 0xe0041, 0x0085, 0x009b, 0x2028, 0x2029,
];

test('every such character is refused in a common name, an organization and an address, named as U+XXXX', (t) => {
  for (const c of HIDDEN) {
    const ch = String.fromCodePoint(c);
    const says = (what: string) => `The ${what} must not hold ${code(c)}, an invisible or text-direction character`;
    // Between two letters a joiner is spelling (see below); everywhere else each of these is refused.
    t.is(hiddenCharacter(`a ${ch}b`), code(c));
    t.throws(() => checkNameValue('name', `Alice ${ch}Example`), { code: 'ERR_INPUT_INVALID', message: says('common name') });
    t.throws(() => checkOrganization(`Example${ch} Corp`), { code: 'ERR_INPUT_INVALID', message: says('organization') });
    t.throws(() => assertEmail(`al${ch}ice@example.com`), { code: 'ERR_INPUT_INVALID', message: says('email address') });
    t.false(printable(`a${ch}b`).includes(ch), 'a message never carries one');
  }
});

test('the zero-width non-joiner and joiner pass inside a word (Persian, Devanagari) and nowhere else; never in an address', (t) => {
  // Persian "mikhāham" with a ZWNJ after the prefix; Devanagari "kṣa" with a virama and a ZWJ (a half form).
  for (const name of ['\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645', '\u0915\u094d\u200d\u0937']) {
    t.is(hiddenCharacter(name), undefined, name);
    t.is(checkNameValue('name', name), name);
  }
  for (const name of ['\u200cAlice', 'Alice\u200d', 'Al \u200dice', '\u{1f468}\u200d\u{1f469}']) t.truthy(hiddenCharacter(name), JSON.stringify(name));
  t.throws(() => assertEmail('mi\u200cxa@example.com'), { code: 'ERR_INPUT_INVALID', message: 'The email address must not hold U+200C, an invisible or text-direction character' });
});

test('names of every script, combining marks, emoji and ASCII punctuation stay', (t) => {
  for (const name of ['Jürgen Müller 日本', 'محمد علي', 'שרה כהן', 'Nguyễn Văn A', 'e\u0301', '😀 Smile', 'Jane "JD" Doe', 'a+b=c\\d; <e>']) {
    t.is(hiddenCharacter(name), undefined, name);
    t.is(checkNameValue('name', name), name);
  }
  t.is(assertEmail('jürgen@example.com'), 'jürgen@example.com');
});
