import ActAsPages
import Mustache

/// Console HTML. Mustache escapes `{{…}}` for HTML, so names and messages are inert text;
/// `{{{…}}}` is used only for HTML this module rendered itself.
enum Templates {
    static let library: MustacheLibrary = {
        MustacheContentTypes.register(ScalarHTMLEscaping(), named: "ACTAS_HTML")
        var library = MustacheLibrary()
        for (name, text) in sources {
            do {
                // Every template escapes with ScalarHTMLEscaping (see there for why).
                try library.register("{{% CONTENT_TYPE: ACTAS_HTML}}" + text, named: name)
            } catch {
                preconditionFailure("console template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    /// swift-mustache's HTML escaping walks Characters, and `"` followed by a combining mark
    /// is one Character that is not `"` — so it slips through unescaped into an attribute.
    /// This escapes Unicode scalars instead.
    struct ScalarHTMLEscaping: MustacheContentType {
        func escapeText(_ text: String) -> String { htmlEscaped(text) }
    }

    static func render(_ name: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: name) ?? ""
    }

    /// A whole page: `content` rendered inside the shared layout.
    static func page(title: String, _ name: String, _ context: [String: Any], signedIn: [String: Any]? = nil) -> String {
        let content = render(name, context)
        var layout: [String: Any] = ["title": title, "content": content]
        if let signedIn { layout["signedIn"] = signedIn }
        return render("layout", layout)
    }

    static let sources: [String: String] = [
        "layout": """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{title}} · ActAs</title>
            <link rel="stylesheet" href="/.actas/console.css">
            </head>
            <body>
            <header class="top">
              <a class="brand" href="/.actas/">ActAs</a>
              {{#signedIn}}
              <nav aria-label="Console">
                <a href="/">Application</a>
                {{#impersonator}}<a href="/.actas/users">Act as a user</a>{{/impersonator}}
                <a href="/.actas/sessions">Sessions</a>
                <a href="/.actas/">My account</a>
                <form method="post" action="/.actas/logout" class="inline">
                  <input type="hidden" name="csrf_token" value="{{csrf}}">
                  <button type="submit" class="link">Sign out {{username}}</button>
                </form>
              </nav>
              {{/signedIn}}
            </header>
            <main id="main">
            {{{content}}}
            </main>
            </body>
            </html>

            """,
        "login": """
            <section class="card narrow" aria-labelledby="login-title">
              <h1 id="login-title">Sign in</h1>
              {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
              {{#oidc}}<p><a class="button" id="oidc-sign-in" href="/.actas/oidc/start?rd={{rdQuery}}">Sign in with {{oidc}}</a></p>{{/oidc}}
              {{#password}}
              <form method="post" action="/.actas/login">
                <input type="hidden" name="csrf_token" value="{{csrf}}">
                <input type="hidden" name="rd" value="{{rd}}">
                <label for="username">Username</label>
                <input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="{{username}}">
                <label for="password">Password</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required>
                <button type="submit">Sign in</button>
              </form>
              {{/password}}
            </section>

            """,
        "account": """
            <h1>{{user.displayName}}</h1>
            {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
            {{#actingAsMe}}
            <section class="card acting target-notice" role="alert">
              <div><strong>{{actor}} ({{actorUsername}})</strong> is acting as you since <time datetime="{{sinceISO}}">{{since}}</time> — reason: {{reason}} — <a href="/.actas/sessions/{{id}}">See what they do</a> —
              <form method="post" action="/.actas/sessions/{{id}}/end" class="inline"><input type="hidden" name="csrf_token" value="{{csrf}}"><input type="hidden" name="rd" value="/.actas/"><button type="submit" class="danger">End it now</button></form></div>
            </section>
            {{/actingAsMe}}
            {{#actingAs}}
            <section class="card acting" aria-labelledby="acting-title">
              <h2 id="acting-title">You are acting as {{actingAs.displayName}} ({{actingAs.username}})</h2>
              <p>Requests to the application go out as them. This console always shows your own account.</p>
              <form method="post" action="/.actas/impersonate/exit" class="inline">
                <input type="hidden" name="csrf_token" value="{{csrf}}">
                <input type="hidden" name="rd" value="/.actas/">
                <button type="submit" class="danger">Exit</button>
              </form>
            </section>
            {{/actingAs}}
            <section class="card" aria-labelledby="identity-title">
              <h2 id="identity-title">Your identity</h2>
              <p class="hint">This is what the application is told about you on every request.</p>
              <dl class="facts">
                <dt>Username</dt><dd><code>{{user.username}}</code></dd>
                <dt>Email</dt><dd>{{user.email}}{{^user.email}}<span class="muted">none</span>{{/user.email}}</dd>
                <dt>Role</dt><dd>{{user.role}}</dd>
                <dt>Groups</dt><dd>{{#user.groups}}<span class="tag">{{.}}</span> {{/user.groups}}{{^user.groups}}<span class="muted">none</span>{{/user.groups}}</dd>
                <dt>Organisation unit</dt><dd>{{user.orgUnit}}{{^user.orgUnit}}<span class="muted">none</span>{{/user.orgUnit}}</dd>
                <dt>Signed in until</dt><dd><time datetime="{{sessionExpires}}">{{sessionExpires}}</time></dd>
              </dl>
            </section>
            {{#consentRequired}}
            <section class="card" aria-labelledby="consent-title">
              <h2 id="consent-title">Support access</h2>
              {{#consentActive}}
              <p class="status ok"><strong>Allowed</strong> until <time datetime="{{consentExpires}}">{{consentExpires}}</time>. Authorised administrators may act as you until then; every request they make is logged below.</p>
              <form method="post" action="/.actas/consent" class="inline">
                <input type="hidden" name="csrf_token" value="{{csrf}}">
                <input type="hidden" name="action" value="revoke">
                <button type="submit" class="danger">Revoke now</button>
              </form>
              <p class="hint">Revoking ends any session acting as you immediately.</p>
              {{/consentActive}}
              {{^consentActive}}
              <p class="status"><strong>Not allowed.</strong> Nobody can act as you.</p>
              {{/consentActive}}
              <form method="post" action="/.actas/consent" class="consent">
                <input type="hidden" name="csrf_token" value="{{csrf}}">
                <fieldset>
                  <legend>{{#consentActive}}Change how long support may act as you{{/consentActive}}{{^consentActive}}Let support act as you for{{/consentActive}}</legend>
                  {{#presets}}<button type="submit" name="hours" value="{{hours}}" class="secondary">{{label}}</button> {{/presets}}
                  <label for="custom_hours">Custom (hours, 1 to {{consentMaxHours}})</label>
                  <input id="custom_hours" name="custom_hours" type="number" min="1" max="{{consentMaxHours}}" step="1" inputmode="numeric">
                  <button type="submit">Allow</button>
                </fieldset>
              </form>
            </section>
            {{/consentRequired}}
            <section class="card" aria-labelledby="history-title">
              <h2 id="history-title">Sessions in which someone acted as you</h2>
              {{#hasSessions}}
              <table>
                <thead><tr><th scope="col">Started</th><th scope="col">Who</th><th scope="col">Reason</th><th scope="col">Duration</th><th scope="col">Ended</th><th scope="col"><span class="visually-hidden">Audit</span></th></tr></thead>
                <tbody>
                {{#sessions}}
                <tr>
                  <td><time datetime="{{started}}">{{started}}</time></td>
                  <td>{{actor}}</td>
                  <td>{{reason}}</td>
                  <td>{{duration}}{{#open}} <span class="tag">active</span>{{/open}}</td>
                  <td>{{#ended}}<time datetime="{{ended}}">{{ended}}</time> <span class="muted">{{endReason}}</span>{{/ended}}</td>
                  <td><a href="/.actas/sessions/{{id}}">Show audit log</a></td>
                </tr>
                {{/sessions}}
                </tbody>
              </table>
              {{/hasSessions}}
              {{^hasSessions}}<p class="muted">Nobody has acted as you.</p>{{/hasSessions}}
            </section>

            """,
        "users": """
            <h1>Act as a user</h1>
            <form method="get" action="/.actas/users" role="search" class="search">
              <label for="q">Find a user</label>
              <input id="q" name="q" type="search" value="{{q}}" placeholder="name, username or email">
              <button type="submit">Search</button>
            </form>
            <p class="muted">{{count}} users</p>
            <table>
              <thead><tr><th scope="col">Name</th><th scope="col">Username</th><th scope="col">Role</th><th scope="col">Unit</th><th scope="col">Status</th><th scope="col">Act as</th></tr></thead>
              <tbody>
              {{#rows}}
              <tr>
                <td>{{displayName}}</td><td><code>{{username}}</code></td><td>{{role}}</td><td>{{orgUnit}}</td><td>{{status}}</td>
                <td>{{#may}}<a class="button" href="{{path}}">Act as {{displayName}}</a>{{/may}}{{^may}}<span class="muted" data-code="{{code}}">{{why}}</span>{{/may}}</td>
              </tr>
              {{/rows}}
              </tbody>
            </table>

            """,
        "confirm": """
            <section class="card narrow wide" aria-labelledby="confirm-title">
              <h1 id="confirm-title">Act as {{target.displayName}}</h1>
              <dl class="facts">
                <dt>User</dt><dd>{{target.displayName}} (<code>{{target.username}}</code>)</dd>
                <dt>Role</dt><dd>{{target.role}}</dd>
                <dt>Unit</dt><dd>{{target.orgUnit}}</dd>
              </dl>
              {{#refusal}}<p class="error" role="alert">{{refusal}}</p>{{/refusal}}
              {{^refusal}}
              {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
              <form method="post" action="/.actas/impersonate">
                <input type="hidden" name="csrf_token" value="{{csrf}}">
                <input type="hidden" name="target" value="{{target.username}}">
                <label for="duration">For how long</label>
                <select id="duration" name="duration">
                  {{#durations}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/durations}}
                </select>
                {{#consentCaps}}<p class="hint">Their consent ends at <time datetime="{{consentExpires}}">{{consentExpires}}</time>; the session ends then at the latest.</p>{{/consentCaps}}
                {{#chooseMode}}
                <fieldset>
                  <legend>Mode</legend>
                  <label class="choice"><input type="radio" name="mode" value="read-only" checked> Read-only: look, don't change anything</label>
                  <label class="choice"><input type="radio" name="mode" value="read-write"> Read-write: act fully as them</label>
                </fieldset>
                {{/chooseMode}}
                {{#fixedMode}}<p>Mode: <strong>{{fixedMode}}</strong></p>{{/fixedMode}}
                <label for="reason">Why do you need to act as them? (at least {{reasonMin}} characters, recorded and shown to them)</label>
                <textarea id="reason" name="reason" rows="3" minlength="{{reasonMin}}" required>{{reason}}</textarea>
                <button type="submit">Start acting as {{target.displayName}}</button>
              </form>
              {{/refusal}}
              <p><a href="/.actas/users">Back to the user list</a></p>
            </section>

            """,
        "sessions": """
            <h1>Sessions</h1>
            <p class="hint">{{#auditor}}Every session in which someone acted as someone else.{{/auditor}}{{^auditor}}Sessions in which someone acted as you, and sessions you ran.{{/auditor}}</p>
            {{#hasSessions}}
            <table>
              <thead><tr><th scope="col">Started</th><th scope="col">Who</th><th scope="col">As</th><th scope="col">Reason</th><th scope="col">Duration</th><th scope="col">Ended</th><th scope="col"><span class="visually-hidden">Audit</span></th></tr></thead>
              <tbody>
              {{#sessions}}
              <tr><td><time datetime="{{started}}">{{started}}</time></td><td>{{actor}}</td><td>{{target}}</td><td>{{reason}}</td>
                <td>{{duration}}{{#open}} <span class="tag">active</span>{{/open}}</td>
                <td>{{#ended}}<time datetime="{{ended}}">{{ended}}</time> <span class="muted">{{endReason}}</span>{{/ended}}</td>
                <td><a href="/.actas/sessions/{{id}}">Show audit log</a></td></tr>
              {{/sessions}}
              </tbody>
            </table>
            {{/hasSessions}}
            {{^hasSessions}}<p class="muted">No sessions.</p>{{/hasSessions}}

            """,
        "session": """
            <h1>{{actor}} acting as {{target}}</h1>
            <section class="card">
              <dl class="facts">
                <dt>Session</dt><dd><code>{{id}}</code></dd>
                <dt>Administrator</dt><dd>{{actor}} (<code>{{actorUsername}}</code>)</dd>
                <dt>Acting as</dt><dd>{{target}} (<code>{{targetUsername}}</code>)</dd>
                <dt>Reason given</dt><dd>{{reason}}</dd>
                <dt>Mode</dt><dd>{{mode}}</dd>
                <dt>Started</dt><dd><time datetime="{{started}}">{{started}}</time></dd>
                <dt>Ended</dt><dd>{{#ended}}<time datetime="{{ended}}">{{ended}}</time> ({{endReason}}){{/ended}}{{^ended}}still active{{/ended}}</dd>
              </dl>
            </section>
            <section class="card" aria-labelledby="log-title">
              <h2 id="log-title">Audit log</h2>
              <p class="hint">Every request made in this session. Passwords, tokens and other secrets are redacted.</p>
              <form method="get" class="log-filter" aria-label="Filter the log">
                <label class="choice"><input type="checkbox" name="assets" value="hide"{{#hideAssets}} checked{{/hideAssets}}> Hide static assets (style sheets, scripts, images, fonts, media)</label>
                <label for="exclude">Hide paths matching (<code>*</code> matches anything; separate with commas)</label>
                <input id="exclude" name="exclude" value="{{exclude}}" placeholder="/static/*, /favicon.ico" spellcheck="false" autocapitalize="none">
                <button type="submit" class="secondary">Apply</button>
              </form>
              <p class="muted" role="status">{{#anyShown}}Showing {{first}}&#x2013;{{last}} of {{shownCount}} entries{{/anyShown}}{{^anyShown}}Nothing to show{{/anyShown}}{{#anyHidden}}; {{hiddenCount}} hidden by the filter{{/anyHidden}}.</p>
              {{#liveSource}}<p class="muted" id="live-status" data-live-src="{{liveSource}}" aria-live="polite">New requests appear here as they are made.</p>{{/liveSource}}
              {{#liveTable}}
              <table class="log"{{^hasRows}} hidden{{/hasRows}}>
                <colgroup><col class="c-time"><col class="c-request"><col class="c-status"><col class="c-query"><col class="c-body"></colgroup>
                <thead><tr><th scope="col">Time</th><th scope="col">Request</th><th scope="col">Status</th><th scope="col">Parameters</th><th scope="col">Body</th></tr></thead>
                <tbody>
                {{#rows}}
                <tr>
                  <td><time datetime="{{time}}">{{time}}</time></td>
                  <td>{{#isRequest}}<code>{{method}} {{path}}</code>{{/isRequest}}{{^isRequest}}<span class="tag">{{type}}</span> {{note}}{{/isRequest}}</td>
                  <td>{{status}}</td>
                  <td>{{#query}}{{#cut}}<details><summary><code>{{preview}}</code></summary><pre>{{full}}</pre></details>{{/cut}}{{^cut}}<code>{{text}}</code>{{/cut}}{{/query}}</td>
                  <td>{{#body}}{{#cut}}<details><summary><code>{{preview}}</code></summary><pre>{{full}}</pre></details>{{/cut}}{{^cut}}<code>{{text}}</code>{{/cut}}{{/body}}</td>
                </tr>
                {{/rows}}
                </tbody>
              </table>
              {{/liveTable}}
              {{#paged}}
              <nav class="pager" aria-label="Pages of the log">
                {{#previous}}<a href="{{previous}}" rel="prev">&#x2190; Previous page</a>{{/previous}}
                <span>Page {{page}} of {{pages}}</span>
                {{#next}}<a href="{{next}}" rel="next">Next page &#x2192;</a>{{/next}}
              </nav>
              {{/paged}}
              {{^hasRows}}<p class="muted" id="no-rows">No requests recorded.</p>{{/hasRows}}
            </section>
            {{#liveSource}}<script src="/.actas/session-live.js" defer></script>{{/liveSource}}

            """,
        "ended": """
            <section class="card narrow" aria-labelledby="ended-title">
              <h1 id="ended-title">Your session as {{target.displayName}} has ended</h1>
              <p>{{why}}</p>
              <p class="muted">Ended <time datetime="{{ended}}">{{ended}}</time> (<code>{{endReason}}</code>, session <code>{{id}}</code>).</p>
              <p>You are browsing as yourself again.</p>
              <p><a href="/">Continue to the application</a> · <a href="/.actas/users">Act as someone else</a></p>
            </section>

            """,
        "signout": """
            <section class="card narrow" aria-labelledby="signout-title">
              <h1 id="signout-title">Sign out</h1>
              <p>You are signed in as {{user.displayName}} (<code>{{user.username}}</code>).</p>
              {{#actingAs}}
              <p class="acting-note" role="note">You are acting as {{actingAs.displayName}} ({{actingAs.username}}). Signing out also ends acting as them.</p>
              {{/actingAs}}
              <form method="post" action="/.actas/logout">
                <input type="hidden" name="csrf_token" value="{{csrf}}">
                <input type="hidden" name="rd" value="{{rd}}">
                <button type="submit">Sign out</button>
              </form>
              <p class="hint">Applications behind ActAs will ask this browser to sign in again.</p>
            </section>

            """,
        "message": """
            <section class="card narrow">
              <h1>{{heading}}</h1>
              <p>{{message}}</p>
              {{#requestID}}<p class="muted">Request id: <code>{{requestID}}</code></p>{{/requestID}}
              <p><a href="{{back}}">{{backLabel}}</a></p>
            </section>

            """,
    ]

    static let css = """
        :root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --card: #fff; --accent: #0b5cad; --danger: #b42318; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
        .top { display: flex; align-items: center; justify-content: space-between; gap: 1rem; padding: .75rem 1.5rem; background: #24292f; color: #fff; }
        .top a, .top .link { color: #fff; }
        .brand { font-weight: 700; text-decoration: none; letter-spacing: .02em; }
        nav { display: flex; gap: 1.25rem; align-items: center; flex-wrap: wrap; }
        main { max-width: 60rem; margin: 2rem auto; padding: 0 1.25rem; }
        h1 { font-size: 1.6rem; margin: 0 0 1rem; }
        h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1.25rem 1.5rem; margin-bottom: 1.25rem; }
        .narrow { max-width: 26rem; margin: 3rem auto; }
        label { display: block; font-weight: 600; margin: .9rem 0 .3rem; }
        input, select, textarea { width: 100%; font: inherit; padding: .5rem .6rem; border: 1px solid #8c959f; border-radius: 6px; background: #fff; color: var(--ink); }
        button { font: inherit; margin-top: 1.1rem; padding: .5rem 1.1rem; border: 0; border-radius: 6px; background: var(--accent); color: #fff; font-weight: 600; cursor: pointer; }
        button.link { background: none; padding: 0; margin: 0; text-decoration: underline; font-weight: 400; }
        button.danger { background: var(--danger); }
        :focus-visible { outline: 3px solid #f0b400; outline-offset: 2px; }
        form.inline { display: inline; margin: 0; }
        .error { color: var(--danger); background: #fef3f2; border: 1px solid #fecdca; border-radius: 6px; padding: .5rem .75rem; }
        .hint, .muted { color: var(--muted); }
        .facts { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1.25rem; margin: 0; }
        .facts dt { font-weight: 600; }
        .facts dd { margin: 0; }
        .wide { max-width: 36rem; }
        .acting { border-color: #f0b400; background: #fff8e1; }
        .acting-note { border: 1px solid #f0b400; background: #fff8e1; border-radius: 6px; padding: .5rem .75rem; }
        .status.ok strong { color: #1a7f37; }
        fieldset { border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0 0; }
        legend { font-weight: 600; padding: 0 .25rem; }
        button.secondary { background: #eaeef2; color: var(--ink); border: 1px solid #8c959f; }
        a.button { display: inline-block; padding: .3rem .8rem; border-radius: 6px; background: var(--accent); color: #fff; text-decoration: none; font-weight: 600; }
        .choice { font-weight: 400; display: flex; gap: .5rem; align-items: center; }
        .choice input { width: auto; }
        .search { display: flex; gap: .5rem; align-items: end; flex-wrap: wrap; }
        .search input { max-width: 22rem; }
        .search label { width: 100%; }
        .search button { margin-top: 0; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
        .tag { display: inline-block; background: #ddf4ff; color: #0a3069; border-radius: 999px; padding: 0 .55rem; font-size: .85rem; }
        code { background: #eff2f5; padding: .05rem .35rem; border-radius: 4px; font-size: .9em; }
        table { width: 100%; border-collapse: collapse; }
        th, td { text-align: left; padding: .45rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        table.log { table-layout: fixed; }
        table.log .c-time { width: 13.5rem; } table.log .c-status { width: 4rem; } table.log .c-request { width: 30%; }
        table.log td { overflow-wrap: anywhere; word-break: break-word; }
        table.log code, table.log pre { white-space: pre-wrap; overflow-wrap: anywhere; }
        table.log pre { margin: .4rem 0 0; max-height: 32rem; overflow: auto; background: #eff2f5; padding: .5rem; border-radius: 4px; font-size: .85em; }
        table.log summary { cursor: pointer; }
        .log-filter { display: grid; gap: .2rem; margin: .5rem 0 1rem; max-width: 40rem; }
        .log-filter label { margin: .4rem 0 0; }
        .log-filter button { justify-self: start; margin-top: .5rem; }
        .pager { display: flex; gap: 1.25rem; align-items: center; margin-top: 1rem; }
        @media (prefers-reduced-motion: reduce) { * { transition: none !important; } }

        """
}
