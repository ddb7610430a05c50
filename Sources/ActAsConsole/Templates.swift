import Mustache

/// Console HTML. Mustache escapes `{{…}}` for HTML, so names and messages are inert text;
/// `{{{…}}}` is used only for HTML this module rendered itself.
enum Templates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in sources {
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("console template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

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
              <form method="post" action="/.actas/login">
                <input type="hidden" name="csrf_token" value="{{csrf}}">
                <input type="hidden" name="rd" value="{{rd}}">
                <label for="username">Username</label>
                <input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="{{username}}">
                <label for="password">Password</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required>
                <button type="submit">Sign in</button>
              </form>
            </section>

            """,
        "account": """
            <h1>{{user.displayName}}</h1>
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
        .tag { display: inline-block; background: #ddf4ff; color: #0a3069; border-radius: 999px; padding: 0 .55rem; font-size: .85rem; }
        code { background: #eff2f5; padding: .05rem .35rem; border-radius: 4px; font-size: .9em; }
        table { width: 100%; border-collapse: collapse; }
        th, td { text-align: left; padding: .45rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        @media (prefers-reduced-motion: reduce) { * { transition: none !important; } }

        """
}
