/**
 * Installing: a bundle file (uploaded with a progress bar) or a URL. A refusal
 * names the chosen file and lists the server's problems; a plugin that is
 * installed already is replaced only after the page says what the change is
 * ("upgrade 0.1.0 → 0.2.0", "downgrade", "reinstall") and the user confirms.
 */
import { api, uploadBundle } from './api.js';
import { busy, h } from './dom.js';

const $ = (selector) => document.querySelector(selector);

/** Words for a refusal, naming what the user chose. */
function refusal(what, err) {
  if (err.code === 'PLUGHOST_ERR_BUNDLE_NOT_GZIP') {
    return `${what} is not a plugin bundle: a bundle is a .tar.gz file, as "plughost pack" makes it.`;
  }
  return `Could not install ${what}${err.status ? ` (HTTP ${err.status})` : ''}: ${err.message}`;
}

/** `installed(info)` shows the new plugin; `unauthorized(err)` sends the user to log in again. */
export function setUpInstall({ installed, unauthorized }) {
  const status = $('#install-status');
  const confirmBox = $('#install-confirm');
  const progress = $('#upload-progress');

  function say(text, { error = false, problems = [] } = {}) {
    status.className = error ? 'status error' : 'status';
    status.replaceChildren(h('p', {}, text));
    if (problems.length) status.append(h('ul', { class: 'problems' }, problems.map((p) => h('li', {}, p.path ? `${p.path}: ${p.message}` : p.message))));
  }

  /** Runs `install(force)`; on "already installed" asks before running it again with force. */
  function run(button, what, install, force = false) {
    return busy(button, () => attempt(button, what, install, force));
  }

  async function attempt(button, what, install, force) {
    // A confirmation that goes away hands the focus back to the button that started it.
    const hadFocus = confirmBox.contains(document.activeElement);
    let asking = false;
    try {
      const info = await install(force);
      say(`Installed ${info.name} ${info.version} (${info.id}).${info.enabled ? '' : ' It is disabled: enable it in the list.'}`);
      for (const w of info.warnings ?? []) status.append(h('p', { class: 'muted' }, w));
      installed(info);
      return true;
    } catch (err) {
      if (err.isAuth) unauthorized(err);
      else if (err.code === 'PLUGHOST_ERR_PLUGIN_EXISTS' && !force) asking = askToReplace(button, what, install, err.details);
      else say(refusal(what, err), { error: true, problems: err.problems });
      return false;
    } finally {
      progress.hidden = true;
      if (!asking) confirmBox.hidden = true;
      if (hadFocus && confirmBox.hidden) button.focus();
    }
  }

  function askToReplace(button, what, install, d) {
    const change = d.change === 'same' ? `reinstall ${d.bundle_version}` : `${d.change} ${d.installed_version} → ${d.bundle_version}`;
    const verb = d.change === 'same' ? 'Reinstall' : d.change === 'upgrade' ? 'Upgrade' : 'Downgrade';
    say(`${d.id} is installed already. ${what} would ${change}.`);
    const yes = h('button', { type: 'button', 'data-action': 'confirm-replace' }, `${verb} ${d.id}`);
    const no = h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel-replace' }, 'Cancel');
    yes.addEventListener('click', () => busy(yes, () => attempt(button, what, install, true)));
    no.addEventListener('click', () => {
      confirmBox.hidden = true;
      say('Nothing was replaced.');
      button.focus();
    });
    confirmBox.replaceChildren(h('p', { class: `change change-${d.change}` }, change.replace(/^./, (c) => c.toUpperCase())), yes, no);
    confirmBox.hidden = false;
    yes.focus();
    return true;
  }

  $('#upload-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('#bundle-file');
    const file = input.files[0];
    if (!file) {
      say('Choose a .tar.gz bundle first.', { error: true });
      input.focus();
      return;
    }
    const what = `"${file.name}"`;
    const upload = (force) => {
      progress.value = 0;
      progress.hidden = false;
      say(`Uploading ${what}…`);
      return uploadBundle(file, {
        force,
        onProgress: (fraction) => {
          progress.value = Math.round(fraction * 100);
          if (fraction >= 1) say(`Uploaded ${what}; the server is checking it…`);
        },
      });
    };
    if (await run(event.submitter ?? $('#upload-form button'), what, upload)) input.value = '';
  });

  $('#url-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const url = $('#bundle-url').value.trim();
    const signatureUrl = $('#signature-url').value.trim();
    if (!url) {
      say('Enter the URL of a .tar.gz bundle first.', { error: true });
      $('#bundle-url').focus();
      return;
    }
    const what = `the bundle at ${url}`;
    const install = (force) => {
      say(`Downloading ${what}…`);
      return api('POST', '/plugins/install-from-url', { url, ...(signatureUrl ? { signature_url: signatureUrl } : {}), ...(force ? { force } : {}) });
    };
    if (await run(event.submitter ?? $('#url-form button'), what, install)) event.target.reset();
  });
}
