import ActAsCore
import Foundation

/// What the impersonation banner shows (SPEC §7).
public struct BannerInfo: Sendable {
    /// The target's display name and username: untrusted, escaped on output.
    public var targetName: String
    public var targetUsername: String
    public var mode: ImpersonationMode
    public var sessionID: String
    /// The session's original start: extend durations count from it (SPEC §4).
    public var startedAt: Date
    public var expiresAt: Date
    public var now: Date
    /// `impersonation.warn_before_end`: the Extend offer appears when less than this is left.
    public var warnBeforeEnd: TimeInterval
    /// The administrator's own CSRF token (never the target's).
    public var csrfToken: String
    /// The page being shown, for `rd` (sanitised again here; the server sanitises on use).
    public var path: String
    /// What Extend asks for: this long from now (the server caps it at `max_duration` and the
    /// consent expiry). Asking "from now" rather than "from the current expiry" makes a double
    /// submit harmless.
    public var extendBy: TimeInterval
    /// False when the session is already at its cap: no Extend offer then.
    public var extendable: Bool
    /// False when the page's CSP forbids inline styles (`style-src` without `'unsafe-inline'`):
    /// `banner.css` then styles the bar alone and the page's CSP reports stay quiet.
    public var inlineStyles: Bool

    public init(targetName: String, targetUsername: String, mode: ImpersonationMode, sessionID: String,
                startedAt: Date, expiresAt: Date, now: Date, warnBeforeEnd: TimeInterval, csrfToken: String,
                path: String, extendBy: TimeInterval = 3600, extendable: Bool = true, inlineStyles: Bool = true) {
        self.targetName = targetName
        self.targetUsername = targetUsername
        self.mode = mode
        self.sessionID = sessionID
        self.startedAt = startedAt
        self.expiresAt = expiresAt
        self.now = now
        self.warnBeforeEnd = warnBeforeEnd
        self.csrfToken = csrfToken
        self.path = path
        self.extendBy = extendBy
        self.extendable = extendable
        self.inlineStyles = inlineStyles
    }
}

/// The impersonation banner: server-rendered markup (works without JavaScript) and its two
/// same-origin assets, `/.actas/banner.js` and `/.actas/banner.css`.
///
/// Robustness against the page's CSS, in layers:
/// - only custom element names (`actas-*`) besides the unavoidable `form`, `button`, `input`,
///   so page rules for `div`, `span`, `header`, `nav`… never match;
/// - inline styles with `!important` on every element (inline `!important` beats any page
///   `!important` rule; the host starts from `all: initial`, children from `all: unset`, so
///   nothing is inherited from the page, e.g. `font-size: 2px`);
/// - `banner.css`, linked next to the element, states the same rules with `!important` for
///   pages whose CSP forbids inline styles, plus the focus ring and the spacer;
/// - `banner.js` moves the contents into a closed shadow root styled by `banner.css`, out of
///   reach of page selectors altogether.
///
/// The markup is pure ASCII (non-ASCII as character references), so it reads the same
/// whatever charset the page declares, and well-formed XML.
public enum Banner {
    public static let jsPath = "/.actas/banner.js"
    public static let cssPath = "/.actas/banner.css"
    static let exitAction = "/.actas/impersonate/exit"
    static let extendAction = "/.actas/impersonate/extend"

    /// Height of the bar; `html` gets the same `padding-top` (see `bannerCSS`).
    static let height = 40

    // MARK: markup

    public static func markup(_ info: BannerInfo) -> [UInt8] {
        Array(html(info).utf8)
    }

    public static func html(_ info: BannerInfo) -> String {
        let left = info.expiresAt.timeIntervalSince(info.now)
        let warn = left < info.warnBeforeEnd
        let offerExtend = warn && info.extendable
        let rd = ReturnPath.sanitise(info.path)
        let name = info.targetName.trimmingCharacters(in: .whitespacesAndNewlines)
        let username = info.targetUsername
        let style = { (part: Part) in info.inlineStyles ? " style=\"\(part.inline)\"" : "" }

        var who = "You are acting as "
        if name.isEmpty || name == username {
            who += "<actas-user dir=\"auto\"\(style(.name))>\(text(username))</actas-user>"
        } else {
            who += "<actas-name dir=\"auto\"\(style(.name))>\(text(name))</actas-name>"
                + " (<actas-user dir=\"auto\"\(style(.plain))>\(text(username))</actas-user>)"
        }

        var out = "<link rel=\"stylesheet\" href=\"\(cssPath)\" />"
        out += "<actas-banner role=\"region\" aria-label=\"Impersonation\""
        out += " data-session=\"\(text(info.sessionID))\" data-mode=\"\(info.mode.rawValue)\""
        out += " data-state=\"\(warn ? "warn" : "active")\" data-extendable=\"\(info.extendable)\""
        out += " data-now=\"\(epochMilliseconds(info.now))\" data-started=\"\(epochMilliseconds(info.startedAt))\""
        out += " data-expires=\"\(epochMilliseconds(info.expiresAt))\""
        out += " data-warn=\"\(wholeSeconds(info.warnBeforeEnd))\" data-extend=\"\(wholeSeconds(info.extendBy))\""
        out += style(.host) + ">"
        out += "<actas-label\(style(.label))>\(who)</actas-label>"
        out += " <actas-sep aria-hidden=\"true\"\(style(.sep))>&#x2014;</actas-sep>"
        out += " <actas-time role=\"timer\" aria-live=\"off\"\(style(.time))>\(remainingText(left)) left</actas-time>"
        out += " <actas-sep aria-hidden=\"true\"\(style(.sep))>&#x2014;</actas-sep> "
        out += form(action: exitAction, part: "exit", csrf: info.csrfToken, rd: rd, duration: nil, label: "Exit", style: style)
        // After Exit, so the sentence SPEC §7 quotes reads the same in both modes.
        if info.mode == .readOnly {
            out += " <actas-mode\(style(.mode))>read-only</actas-mode>"
        }
        if offerExtend {
            let duration = "\(wholeSeconds(info.now.timeIntervalSince(info.startedAt) + info.extendBy, minimum: 1))s"
            out += " " + form(action: extendAction, part: "extend", csrf: info.csrfToken, rd: rd, duration: duration, label: "Extend", style: style)
        }
        out += "<actas-note\(style(.note))></actas-note>"
        out += "<actas-status role=\"status\" aria-live=\"polite\" aria-atomic=\"true\"\(style(.status))></actas-status>"
        out += "</actas-banner>"
        out += "<script src=\"\(jsPath)\" defer=\"defer\"></script>"
        return out
    }

    private static func form(action: String, part: String, csrf: String, rd: String, duration: String?, label: String,
                             style: (Part) -> String) -> String {
        var out = "<form method=\"post\" action=\"\(action)\" data-actas=\"\(part)\"\(style(part == "exit" ? .exitForm : .extendForm))>"
        out += "<input type=\"hidden\" name=\"csrf_token\" value=\"\(text(csrf))\" />"
        out += "<input type=\"hidden\" name=\"rd\" value=\"\(text(rd))\" />"
        if let duration { out += "<input type=\"hidden\" name=\"duration\" value=\"\(text(duration))\" />" }
        let button: Part = part == "exit" ? .exitButton : .extendButton
        out += "<button type=\"submit\" data-actas=\"\(part)-button\"\(style(button))>\(label)</button>"
        out += "</form>"
        return out
    }

    /// Time left as the banner shows it, `MM:SS` as SPEC §7 writes it: whole minutes (at least
    /// two digits, beyond 59 for an hour or more: `90:00`), then seconds. Rounded up, so `00:00`
    /// means over.
    public static func remainingText(_ seconds: TimeInterval) -> String {
        let total = wholeSeconds(seconds)
        let minutes = total / 60
        let secs = total % 60
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(two(minutes)):\(two(secs))"
    }

    /// Seconds rounded up, clamped to `minimum...10^9` (NaN counts as `minimum`).
    static func wholeSeconds(_ seconds: TimeInterval, minimum: Int = 0) -> Int {
        guard seconds.isFinite else { return seconds == .infinity ? 1_000_000_000 : minimum }
        return Int(min(max(seconds.rounded(.up), Double(minimum)), 1e9))
    }

    static func epochMilliseconds(_ date: Date) -> Int64 {
        let ms = (date.timeIntervalSince1970 * 1000).rounded()
        guard ms.isFinite else { return 0 }
        return Int64(min(max(ms, -9e15), 9e15))
    }

    /// Text or attribute value: `htmlEscaped` (per Unicode scalar), then anything outside
    /// printable ASCII as a character reference, so the page's charset cannot garble it.
    static func text(_ value: String) -> String {
        var out = ""
        for scalar in htmlEscaped(value).unicodeScalars {
            if scalar.value >= 0x20 && scalar.value < 0x7F {
                out.unicodeScalars.append(scalar)
            } else {
                out += "&#x" + String(scalar.value, radix: 16, uppercase: true) + ";"
            }
        }
        return out
    }

    // MARK: styles

    /// Colours: text #1b1b1b on amber #ffbf47 is 10.5:1; the Exit button, white on #1b1b1b,
    /// and the Extend button, #1b1b1b on white, are 17.2:1; the focus ring (#1b1b1b) against
    /// the bar is 10.5:1 (WCAG 2.2 AA asks 4.5:1 for text, 3:1 for focus indicators).
    static let ink = "#1b1b1b"
    static let amber = "#ffbf47"
    /// Sizes shrink a little on narrow screens (no media queries: they could not override the
    /// inline `!important` styles), so Exit and Extend stay visible down to 320 px; the label
    /// gives way first, ellipsised.
    static let fontSize = "clamp(12px,3.6vw,14px)"
    static let family = "system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif"
    static let font = "\(fontSize)/20px \(family)"
    static let gap = "clamp(3px,1.2vw,8px)"

    enum Part: CaseIterable {
        case host, label, name, plain, mode, sep, time, exitForm, extendForm, exitButton, extendButton, note, status

        /// Selectors for `banner.css`; each matches only ActAs elements, in the page (no JS,
        /// or no shadow DOM) as well as in the shadow root.
        var selectors: [String] {
            switch self {
            case .host: return ["actas-banner"]
            case .label: return ["actas-label"]
            case .name: return ["actas-name", "actas-label > actas-user:only-child"]
            case .plain: return ["actas-user"]
            case .mode: return ["actas-mode"]
            case .sep: return ["actas-sep"]
            case .time: return ["actas-time"]
            case .exitForm: return ["form[data-actas=\"exit\"]"]
            case .extendForm: return ["form[data-actas=\"extend\"]"]
            case .exitButton: return ["[data-actas=\"exit-button\"]", "[data-actas=\"back-link\"]"]
            case .extendButton: return ["[data-actas=\"extend-button\"]"]
            case .note: return ["actas-note"]
            case .status: return ["actas-status"]
            }
        }

        var declarations: [(String, String)] {
            let child: [(String, String)] = [("all", "unset")]
            let button: [(String, String)] = [
                ("display", "inline-block"), ("position", "static"), ("float", "none"), ("box-sizing", "border-box"),
                ("width", "auto"), ("min-width", "0"), ("height", "auto"), ("margin", "0"), ("padding", "3px clamp(6px,2.4vw,12px)"),
                ("border-radius", "4px"), ("font", "700 \(Banner.fontSize)/18px \(Banner.family)"),
                ("letter-spacing", "normal"), ("text-transform", "none"), ("text-decoration", "none"), ("text-indent", "0"),
                ("text-shadow", "none"), ("box-shadow", "none"), ("white-space", "nowrap"), ("cursor", "pointer"),
                ("visibility", "visible"), ("opacity", "1"), ("transform", "none"), ("filter", "none"),
                ("clip-path", "none"), ("pointer-events", "auto"), ("appearance", "none"), ("-webkit-appearance", "none"),
                ("vertical-align", "middle"),
            ]
            switch self {
            case .host:
                return [
                    ("all", "initial"), ("position", "fixed"), ("top", "0"), ("left", "0"), ("right", "0"),
                    ("z-index", "2147483647"), ("display", "flex"), ("align-items", "center"), ("box-sizing", "border-box"),
                    ("height", "\(Banner.height)px"), ("margin", "0"), ("padding", "0 clamp(6px,2.4vw,12px)"), ("overflow", "hidden"),
                    ("background", Banner.amber), ("color", Banner.ink), ("border-bottom", "2px solid \(Banner.ink)"),
                    ("box-shadow", "0 1px 4px rgba(0,0,0,.35)"), ("font", Banner.font), ("text-align", "left"),
                    ("white-space", "nowrap"), ("direction", "ltr"), ("unicode-bidi", "isolate"), ("visibility", "visible"),
                    ("opacity", "1"), ("pointer-events", "auto"),
                ]
            case .label:
                return child + [("display", "block"), ("flex", "0 1 auto"), ("min-width", "0"), ("overflow", "hidden"),
                                ("text-overflow", "ellipsis"), ("white-space", "nowrap")]
            case .name:
                return child + [("font-weight", "700"), ("unicode-bidi", "isolate")]
            case .plain:
                return child + [("unicode-bidi", "isolate")]
            case .mode:
                return child + [("display", "block"), ("flex", "none"), ("margin", "0 0 0 \(Banner.gap)"), ("padding", "0 clamp(3px,1.2vw,6px)"),
                                ("border", "1px solid \(Banner.ink)"), ("border-radius", "3px"), ("font-weight", "700")]
            case .sep:
                return child + [("display", "block"), ("flex", "none"), ("margin", "0 \(Banner.gap)")]
            case .time:
                return child + [("display", "block"), ("flex", "none"), ("font-weight", "700"),
                                ("font-variant-numeric", "tabular-nums")]
            case .exitForm:
                return child + [("display", "flex"), ("flex", "none"), ("margin", "0")]
            case .extendForm:
                return child + [("display", "flex"), ("flex", "none"), ("margin", "0 0 0 \(Banner.gap)")]
            case .exitButton:
                return button + [("background", Banner.ink), ("color", "#fff"), ("border", "1px solid \(Banner.ink)")]
            case .extendButton:
                return button + [("background", "#fff"), ("color", Banner.ink), ("border", "1px solid \(Banner.ink)")]
            case .note:
                return child + [("display", "block"), ("flex", "0 1 auto"), ("min-width", "0"), ("margin", "0 0 0 \(Banner.gap)"),
                                ("overflow", "hidden"), ("text-overflow", "ellipsis")]
            case .status:
                return child + [("display", "block"), ("position", "absolute"), ("width", "1px"), ("height", "1px"),
                                ("margin", "-1px"), ("overflow", "hidden"), ("clip", "rect(0 0 0 0)"),
                                ("clip-path", "inset(50%)"), ("white-space", "nowrap")]
            }
        }

        var inline: String {
            declarations.map { "\($0.0):\($0.1)!important" }.joined(separator: ";")
        }
    }

    // MARK: assets

    /// The same rules as the inline styles, for pages whose CSP forbids inline styles and for
    /// the shadow root; plus what inline styles cannot say: the spacer and the focus ring.
    ///
    /// Spacer: `html { padding-top }` rather than an in-flow element, because the bar must
    /// not take part in the page's layout — an in-flow child of `<body>` would become a flex or
    /// grid item of a flex/grid `<body>` and could shift the app's grid placement; a fixed
    /// element and a root padding cannot. The bar has a fixed height (one line, the name
    /// ellipsised) so the padding always matches it.
    public static let bannerCSS: String = {
        var css = "/* ActAs impersonation banner. Served same-origin for CSP 'self'. */\n"
        css += "html{padding-top:\(height)px!important;scroll-padding-top:\(height)px!important}\n"
        for part in Part.allCases {
            let body = part.declarations.map { "\($0.0):\($0.1)!important" }.joined(separator: ";")
            if part == .host {
                css += "actas-banner{\(body)}\n"
                // Separately: a browser that does not know :host drops only this rule.
                css += ":host{\(body)}\n"
            } else {
                let selectors = part.selectors.flatMap { ["actas-banner \($0)", $0] }
                css += selectors.joined(separator: ",") + "{\(body)}\n"
            }
        }
        let buttons = ["[data-actas$=\"-button\"]", "[data-actas=\"back-link\"]"]
        let focus = buttons.flatMap { ["actas-banner \($0):focus-visible", "\($0):focus-visible"] }
        css += focus.joined(separator: ",") + "{outline:3px solid \(ink)!important;outline-offset:2px!important}\n"
        css += "actas-banner [data-actas=\"back-link\"],[data-actas=\"back-link\"]{margin:0 0 0 \(gap)!important}\n"
        return css
    }()

    /// Live countdown, extend prompt and end detection. No globals, no dependencies, ES2017,
    /// same-origin URLs only; CSP `script-src 'self'` is enough.
    public static let bannerJS: String = #"""
        /* ActAs impersonation banner: live countdown, extend prompt, end detection. */
        (function () {
          'use strict';
          var doc = document;
          var host = doc.querySelector('actas-banner[data-session]');
          if (!host || host.hasAttribute('data-live')) { return; }
          host.setAttribute('data-live', '');

          function part(name) { return host.querySelector(name); }
          function num(name) { var v = Number(host.getAttribute('data-' + name)); return isFinite(v) ? v : 0; }
          var session = host.getAttribute('data-session') || '';
          var started = num('started');
          var expires = num('expires');
          var warnMs = num('warn') * 1000;
          var extendMs = num('extend') * 1000;
          var extendable = host.getAttribute('data-extendable') !== 'false';
          var skew = num('now') ? num('now') - Date.now() : 0; /* server clock minus ours */
          var label = part('actas-label');
          var modeBadge = part('actas-mode');
          var time = part('actas-time');
          var seps = host.querySelectorAll('actas-sep');
          var note = part('actas-note');
          var status = part('actas-status');
          var exitForm = part('form[data-actas="exit"]');
          var extendForm = part('form[data-actas="extend"]');
          var tokenInput = exitForm && exitForm.querySelector('input[name="csrf_token"]');
          var token = tokenInput ? tokenInput.value : '';
          var warned = host.getAttribute('data-state') === 'warn';
          var ended = false, polling = false, zeroPolled = false, shown = '';
          var ticker = 0, poller = 0;

          /* Out of reach of the page CSS: a shadow root styled by banner.css. Open, not closed:
             a page script could remove the whole host anyway, and tests and assistive tools
             need to reach the buttons. */
          try {
            var root = host.attachShadow({ mode: 'open' });
            var link = doc.createElement('link');
            link.rel = 'stylesheet';
            link.href = '/.actas/banner.css';
            root.appendChild(link);
            while (host.firstChild) { root.appendChild(host.firstChild); }
          } catch (e) { /* no shadow DOM: the inline styles and banner.css still apply */ }

          function now() { return Date.now() + skew; }
          function two(n) { return (n < 10 ? '0' : '') + n; }
          function fmt(ms) {
            var s = Math.max(0, Math.ceil(ms / 1000));
            return two(Math.floor(s / 60)) + ':' + two(s % 60);
          }
          function show(el, on) {
            if (!el) { return; }
            /* Only undo our own hiding: the inline display of server-rendered parts stays. */
            if (!on) { el.style.setProperty('display', 'none', 'important'); }
            else if (el.style.getPropertyValue('display') === 'none') { el.style.removeProperty('display'); }
          }
          function say(text, visible) {
            if (status) { status.textContent = ''; status.textContent = text; }
            if (note) { note.textContent = visible ? text : ''; }
          }
          function here() {
            var p = location.pathname + location.search;
            return p.charAt(0) === '/' && p.charAt(1) !== '/' ? p : '/';
          }
          function field(form, name, value) {
            var input = form.querySelector('input[name="' + name + '"]');
            if (!input) {
              input = doc.createElement('input');
              input.type = 'hidden';
              input.name = name;
              form.appendChild(input);
            }
            input.value = value;
          }
          function setToken(value) {
            token = value;
            [exitForm, extendForm].forEach(function (f) { if (f) { field(f, 'csrf_token', value); } });
          }
          function extendDuration() {
            return Math.max(1, Math.ceil((now() - started + extendMs) / 1000)) + 's';
          }
          function apply(imp) {
            var e = Date.parse(imp.expires_at);
            if (isFinite(e)) { expires = e; }
          }

          function makeExtend() {
            var f = doc.createElement('form');
            f.method = 'post';
            f.action = '/.actas/impersonate/extend';
            f.setAttribute('data-actas', 'extend');
            field(f, 'csrf_token', token);
            field(f, 'rd', here());
            field(f, 'duration', extendDuration());
            var b = doc.createElement('button');
            b.type = 'submit';
            b.setAttribute('data-actas', 'extend-button');
            b.textContent = 'Extend';
            f.appendChild(b);
            if (exitForm && exitForm.parentNode) { exitForm.parentNode.insertBefore(f, exitForm.nextSibling); }
            return f;
          }
          function wireExtend(f) {
            f.addEventListener('submit', function (ev) {
              field(f, 'rd', here());
              field(f, 'duration', extendDuration());
              if (!window.fetch) { return; } /* the form posts itself */
              ev.preventDefault();
              var button = f.querySelector('button');
              if (button) { button.disabled = true; }
              window.fetch('/.actas/api/v1/impersonation', {
                method: 'PATCH', credentials: 'same-origin', cache: 'no-store',
                headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': token },
                body: JSON.stringify({ duration: extendDuration() })
              }).then(function (res) {
                return res.json().then(function (body) { return { status: res.status, body: body }; },
                                       function () { return { status: res.status, body: null }; });
              }).then(function (r) {
                if (button) { button.disabled = false; }
                if (r.status === 200 && r.body && r.body.id === session) {
                  var before = expires;
                  apply(r.body);
                  if (expires <= before) {
                    extendable = false;
                    show(extendForm, false);
                    say('This session cannot be extended further.', true);
                  } else {
                    say('Extended: ' + fmt(expires - now()) + ' left.', false);
                  }
                  tick();
                } else if (r.status === 401 || r.status === 404) {
                  end();
                } else {
                  say((r.body && typeof r.body.message === 'string') ? r.body.message : 'The session could not be extended.', true);
                  poll();
                }
              }, function () {
                HTMLFormElement.prototype.submit.call(f); /* network trouble: post the form instead */
              });
            });
          }
          if (extendForm) { wireExtend(extendForm); }
          if (exitForm) { exitForm.addEventListener('submit', function () { field(exitForm, 'rd', here()); }); }

          function tick() {
            if (ended) { return; }
            var left = expires - now();
            var text = fmt(left) + ' left';
            if (time && text !== shown) { time.textContent = text; shown = text; }
            if (left <= 0) {
              if (!zeroPolled) { zeroPolled = true; poll(); }
              return;
            }
            zeroPolled = false;
            var inWarn = left < warnMs;
            if (inWarn && !warned) {
              warned = true;
              host.setAttribute('data-state', 'warn');
              var minutes = Math.round(warnMs / 60000);
              say('This impersonation session ends in less than ' +
                  (minutes >= 1 ? minutes + (minutes === 1 ? ' minute.' : ' minutes.') : Math.round(warnMs / 1000) + ' seconds.'), false);
            } else if (!inWarn && warned) {
              warned = false;
              host.setAttribute('data-state', 'active');
            }
            if (inWarn && extendable && !extendForm) { extendForm = makeExtend(); wireExtend(extendForm); }
            show(extendForm, inWarn && extendable);
          }

          function end() {
            if (ended) { return; }
            ended = true;
            clearInterval(ticker);
            clearInterval(poller);
            host.setAttribute('data-state', 'ended');
            [modeBadge, time, exitForm, extendForm].forEach(function (el) { show(el, false); });
            for (var i = 0; i < seps.length; i++) { show(seps[i], false); }
            if (label) { label.textContent = 'Your impersonation session has ended.'; }
            if (note) { note.textContent = ''; }
            var a = doc.createElement('a');
            a.href = '/.actas/ended?id=' + encodeURIComponent(session);
            a.setAttribute('data-actas', 'back-link');
            a.textContent = 'Continue as yourself';
            if (label && label.parentNode) { label.parentNode.insertBefore(a, label.nextSibling); }
            say('Your impersonation session has ended.', false);
          }

          function poll() {
            if (ended || polling || !window.fetch) { return; }
            polling = true;
            window.fetch('/.actas/api/v1/me', {
              credentials: 'same-origin', cache: 'no-store', headers: { 'Accept': 'application/json' }
            }).then(function (res) {
              var date = Date.parse(res.headers.get('Date') || '');
              if (isFinite(date) && Math.abs(date - Date.now() - skew) > 2000) { skew = date - Date.now(); }
              if (res.status === 401) { end(); return; }
              if (res.status === 403) {
                return res.json().then(function (b) { if (b && b.error === 'impersonation_ended') { end(); } });
              }
              if (!res.ok) { return; }
              return res.json().then(function (me) {
                if (!me) { return; }
                if (typeof me.csrf_token === 'string' && me.csrf_token) { setToken(me.csrf_token); }
                var imp = me.impersonation;
                if (!imp || imp.id !== session) { end(); return; }
                apply(imp);
                if (expires <= now()) { end(); } else { tick(); }
              });
            }).catch(function () { /* offline or busy: try again later */ }).then(function () { polling = false; });
          }

          /* The bar is fixed at the top: the page's own sticky or fixed parts pinned near the
             top of the window (a sticky header or sidebar, top: 0) would slide under it when the
             page scrolls. Pin them just below the bar instead; pinned again if a script resets them. */
          function scrollsInside(el) {
            for (var p = el.parentElement; p && p !== doc.body && p !== doc.documentElement; p = p.parentElement) {
              var o = getComputedStyle(p);
              if (/(auto|scroll|hidden|overlay)/.test(o.overflowX + ' ' + o.overflowY)) { return true; }
            }
            return false;
          }
          function pinBelow() {
            var bar = host.getBoundingClientRect().height;
            if (!bar || !doc.body) { return; }
            var all = doc.body.getElementsByTagName('*');
            for (var i = 0; i < all.length; i++) {
              var el = all[i];
              if (el === host || host.contains(el)) { continue; }
              var mine = el.getAttribute('data-actas-pinned');
              if (mine !== null && el.style.getPropertyValue('top') === mine) { continue; }
              var cs = getComputedStyle(el);
              if (cs.position !== 'sticky' && cs.position !== 'fixed') { continue; }
              var top = parseFloat(cs.top);
              if (!isFinite(top) || top < 0 || top >= bar) { continue; }
              /* sticky: only against the window, not inside a scrolling box of the page;
                 fixed: only what the bar really covers (not a bottom bar, nor one in a transformed box). */
              if (cs.position === 'sticky' ? scrollsInside(el) : el.getBoundingClientRect().top >= bar) { continue; }
              var value = (top + bar) + 'px';
              el.style.setProperty('top', value, 'important');
              el.setAttribute('data-actas-pinned', value);
              /* A part as tall as the window (max-height: 100vh) keeps its bottom in view. */
              var max = parseFloat(cs.maxHeight);
              if (isFinite(max) && max >= window.innerHeight - top - 1) {
                el.style.setProperty('max-height', 'calc(100vh - ' + value + ')', 'important');
              }
            }
          }
          var pinQueued = 0;
          function queuePin() {
            if (!pinQueued) { pinQueued = setTimeout(function () { pinQueued = 0; pinBelow(); }, 100); }
          }
          pinBelow();
          window.addEventListener('load', pinBelow);
          window.addEventListener('resize', queuePin);
          if (window.MutationObserver && doc.body) {
            new MutationObserver(queuePin).observe(doc.body, { childList: true, subtree: true, attributes: true, attributeFilter: ['class', 'style'] });
          }

          tick();
          ticker = setInterval(tick, 1000);
          poller = setInterval(poll, 15000);
          doc.addEventListener('visibilitychange', function () { if (!doc.hidden) { tick(); poll(); } });
          window.addEventListener('pageshow', function (ev) { if (ev.persisted) { poll(); } });
        })();

        """#
}
