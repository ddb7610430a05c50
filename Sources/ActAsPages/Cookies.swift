/// Names of the proxy's own cookies. Everything starting with `__Host-actas` belongs to
/// ActAs and never reaches the application.
public enum ActAsCookies {
    public static let session = "__Host-actas_session"
    public static let login = "__Host-actas_login"
    public static let prefix = "__Host-actas"
}
