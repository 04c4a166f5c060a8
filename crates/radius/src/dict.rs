//! Attribute dictionary: the subset of RFC 2865/2866/2868/2869/3162/3579/3580/4675/5176/5580/6911
//! attributes a NAC needs, a few vendor dictionaries, named integer values, and
//! [`describe`] for debug logs (which never prints secrets).
//!
//! Names follow the FreeRADIUS dictionaries so logs and configuration read the same.

use std::fmt;

use crate::Packet;

/// Data type of an attribute value. Drives decode-time length checks and [`describe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttrKind {
    /// UTF-8 text (RFC 8044 `text`), 0..=253 octets.
    Text,
    /// Opaque octets.
    Octets,
    /// 32-bit unsigned integer, exactly 4 octets.
    Integer,
    /// IPv4 address, exactly 4 octets.
    Ipv4,
    /// IPv6 address, exactly 16 octets.
    Ipv6,
    /// IPv6 prefix (RFC 3162 §2.3): reserved octet, prefix length, 0..=16 prefix octets.
    Ipv6Prefix,
    /// IPv6 interface identifier, exactly 8 octets.
    InterfaceId,
    /// Seconds since the Unix epoch, exactly 4 octets.
    Date,
    /// RFC 2868 tagged integer: tag octet + 24-bit value, exactly 4 octets.
    TaggedInteger,
    /// RFC 2868 tagged string: optional tag octet (0x00..=0x1F) then text.
    TaggedText,
    /// Secret material (User-Password, CHAP-Password, Tunnel-Password, MPPE keys):
    /// never rendered by [`describe`].
    Secret,
    /// Vendor-Specific container (RFC 2865 §5.26).
    Vsa,
}

impl AttrKind {
    /// Allowed value length range (without the 2-octet header) enforced by
    /// [`Packet::decode`](crate::Packet::decode) for dictionary attributes.
    pub const fn value_len_bounds(self) -> (u8, u8) {
        match self {
            AttrKind::Integer | AttrKind::Ipv4 | AttrKind::Date | AttrKind::TaggedInteger => (4, 4),
            AttrKind::Ipv6 => (16, 16),
            AttrKind::InterfaceId => (8, 8),
            AttrKind::Ipv6Prefix => (2, 18),
            _ => (0, 253),
        }
    }
}

/// A standard attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttrDef {
    /// Attribute type number.
    pub typ: u8,
    /// Name (FreeRADIUS spelling).
    pub name: &'static str,
    /// Value type.
    pub kind: AttrKind,
}

macro_rules! attributes {
    ($( $(#[$m:meta])* $konst:ident = $typ:literal, $name:literal, $kind:ident; )*) => {
        $( $(#[$m])* #[doc = concat!("`", $name, "` (", stringify!($typ), ")")] pub const $konst: u8 = $typ; )*
        const DICT: &[AttrDef] = &[
            $( AttrDef { typ: $typ, name: $name, kind: AttrKind::$kind }, )*
        ];
    };
}

attributes! {
    // RFC 2865
    USER_NAME = 1, "User-Name", Text;
    USER_PASSWORD = 2, "User-Password", Secret;
    CHAP_PASSWORD = 3, "CHAP-Password", Secret;
    NAS_IP_ADDRESS = 4, "NAS-IP-Address", Ipv4;
    NAS_PORT = 5, "NAS-Port", Integer;
    SERVICE_TYPE = 6, "Service-Type", Integer;
    FRAMED_PROTOCOL = 7, "Framed-Protocol", Integer;
    FRAMED_IP_ADDRESS = 8, "Framed-IP-Address", Ipv4;
    FRAMED_IP_NETMASK = 9, "Framed-IP-Netmask", Ipv4;
    FRAMED_ROUTING = 10, "Framed-Routing", Integer;
    FILTER_ID = 11, "Filter-Id", Text;
    FRAMED_MTU = 12, "Framed-MTU", Integer;
    FRAMED_COMPRESSION = 13, "Framed-Compression", Integer;
    LOGIN_IP_HOST = 14, "Login-IP-Host", Ipv4;
    LOGIN_SERVICE = 15, "Login-Service", Integer;
    LOGIN_TCP_PORT = 16, "Login-TCP-Port", Integer;
    REPLY_MESSAGE = 18, "Reply-Message", Text;
    CALLBACK_NUMBER = 19, "Callback-Number", Text;
    CALLBACK_ID = 20, "Callback-Id", Text;
    FRAMED_ROUTE = 22, "Framed-Route", Text;
    FRAMED_IPX_NETWORK = 23, "Framed-IPX-Network", Ipv4;
    STATE = 24, "State", Octets;
    CLASS = 25, "Class", Octets;
    VENDOR_SPECIFIC = 26, "Vendor-Specific", Vsa;
    SESSION_TIMEOUT = 27, "Session-Timeout", Integer;
    IDLE_TIMEOUT = 28, "Idle-Timeout", Integer;
    TERMINATION_ACTION = 29, "Termination-Action", Integer;
    CALLED_STATION_ID = 30, "Called-Station-Id", Text;
    CALLING_STATION_ID = 31, "Calling-Station-Id", Text;
    NAS_IDENTIFIER = 32, "NAS-Identifier", Text;
    PROXY_STATE = 33, "Proxy-State", Octets;
    LOGIN_LAT_SERVICE = 34, "Login-LAT-Service", Text;
    LOGIN_LAT_NODE = 35, "Login-LAT-Node", Text;
    LOGIN_LAT_GROUP = 36, "Login-LAT-Group", Octets;
    FRAMED_APPLETALK_LINK = 37, "Framed-AppleTalk-Link", Integer;
    FRAMED_APPLETALK_NETWORK = 38, "Framed-AppleTalk-Network", Integer;
    FRAMED_APPLETALK_ZONE = 39, "Framed-AppleTalk-Zone", Text;
    // RFC 2866
    ACCT_STATUS_TYPE = 40, "Acct-Status-Type", Integer;
    ACCT_DELAY_TIME = 41, "Acct-Delay-Time", Integer;
    ACCT_INPUT_OCTETS = 42, "Acct-Input-Octets", Integer;
    ACCT_OUTPUT_OCTETS = 43, "Acct-Output-Octets", Integer;
    ACCT_SESSION_ID = 44, "Acct-Session-Id", Text;
    ACCT_AUTHENTIC = 45, "Acct-Authentic", Integer;
    ACCT_SESSION_TIME = 46, "Acct-Session-Time", Integer;
    ACCT_INPUT_PACKETS = 47, "Acct-Input-Packets", Integer;
    ACCT_OUTPUT_PACKETS = 48, "Acct-Output-Packets", Integer;
    ACCT_TERMINATE_CAUSE = 49, "Acct-Terminate-Cause", Integer;
    ACCT_MULTI_SESSION_ID = 50, "Acct-Multi-Session-Id", Text;
    ACCT_LINK_COUNT = 51, "Acct-Link-Count", Integer;
    // RFC 2869
    ACCT_INPUT_GIGAWORDS = 52, "Acct-Input-Gigawords", Integer;
    ACCT_OUTPUT_GIGAWORDS = 53, "Acct-Output-Gigawords", Integer;
    EVENT_TIMESTAMP = 55, "Event-Timestamp", Date;
    // RFC 4675
    EGRESS_VLANID = 56, "Egress-VLANID", Integer;
    INGRESS_FILTERS = 57, "Ingress-Filters", Integer;
    EGRESS_VLAN_NAME = 58, "Egress-VLAN-Name", Text;
    USER_PRIORITY_TABLE = 59, "User-Priority-Table", Octets;
    // RFC 2865
    CHAP_CHALLENGE = 60, "CHAP-Challenge", Octets;
    NAS_PORT_TYPE = 61, "NAS-Port-Type", Integer;
    PORT_LIMIT = 62, "Port-Limit", Integer;
    LOGIN_LAT_PORT = 63, "Login-LAT-Port", Text;
    // RFC 2868
    TUNNEL_TYPE = 64, "Tunnel-Type", TaggedInteger;
    TUNNEL_MEDIUM_TYPE = 65, "Tunnel-Medium-Type", TaggedInteger;
    TUNNEL_CLIENT_ENDPOINT = 66, "Tunnel-Client-Endpoint", TaggedText;
    TUNNEL_SERVER_ENDPOINT = 67, "Tunnel-Server-Endpoint", TaggedText;
    ACCT_TUNNEL_CONNECTION = 68, "Acct-Tunnel-Connection", Text;
    TUNNEL_PASSWORD = 69, "Tunnel-Password", Secret;
    // RFC 2869
    ARAP_PASSWORD = 70, "ARAP-Password", Secret;
    ARAP_FEATURES = 71, "ARAP-Features", Octets;
    ARAP_ZONE_ACCESS = 72, "ARAP-Zone-Access", Integer;
    ARAP_SECURITY = 73, "ARAP-Security", Integer;
    ARAP_SECURITY_DATA = 74, "ARAP-Security-Data", Text;
    PASSWORD_RETRY = 75, "Password-Retry", Integer;
    PROMPT = 76, "Prompt", Integer;
    CONNECT_INFO = 77, "Connect-Info", Text;
    CONFIGURATION_TOKEN = 78, "Configuration-Token", Text;
    EAP_MESSAGE = 79, "EAP-Message", Octets;
    MESSAGE_AUTHENTICATOR = 80, "Message-Authenticator", Octets;
    // RFC 2868
    TUNNEL_PRIVATE_GROUP_ID = 81, "Tunnel-Private-Group-Id", TaggedText;
    TUNNEL_ASSIGNMENT_ID = 82, "Tunnel-Assignment-Id", TaggedText;
    TUNNEL_PREFERENCE = 83, "Tunnel-Preference", TaggedInteger;
    // RFC 2869
    ARAP_CHALLENGE_RESPONSE = 84, "ARAP-Challenge-Response", Octets;
    ACCT_INTERIM_INTERVAL = 85, "Acct-Interim-Interval", Integer;
    // RFC 2867
    ACCT_TUNNEL_PACKETS_LOST = 86, "Acct-Tunnel-Packets-Lost", Integer;
    // RFC 2869
    NAS_PORT_ID = 87, "NAS-Port-Id", Text;
    FRAMED_POOL = 88, "Framed-Pool", Text;
    // RFC 4372
    CHARGEABLE_USER_IDENTITY = 89, "Chargeable-User-Identity", Octets;
    // RFC 2868
    TUNNEL_CLIENT_AUTH_ID = 90, "Tunnel-Client-Auth-Id", TaggedText;
    TUNNEL_SERVER_AUTH_ID = 91, "Tunnel-Server-Auth-Id", TaggedText;
    // RFC 4849
    NAS_FILTER_RULE = 92, "NAS-Filter-Rule", Text;
    // RFC 3162
    NAS_IPV6_ADDRESS = 95, "NAS-IPv6-Address", Ipv6;
    FRAMED_INTERFACE_ID = 96, "Framed-Interface-Id", InterfaceId;
    FRAMED_IPV6_PREFIX = 97, "Framed-IPv6-Prefix", Ipv6Prefix;
    LOGIN_IPV6_HOST = 98, "Login-IPv6-Host", Ipv6;
    FRAMED_IPV6_ROUTE = 99, "Framed-IPv6-Route", Text;
    FRAMED_IPV6_POOL = 100, "Framed-IPv6-Pool", Text;
    // RFC 5176
    ERROR_CAUSE = 101, "Error-Cause", Integer;
    // RFC 4818
    DELEGATED_IPV6_PREFIX = 123, "Delegated-IPv6-Prefix", Ipv6Prefix;
    // RFC 5580
    OPERATOR_NAME = 126, "Operator-Name", Text;
    // RFC 6911
    FRAMED_IPV6_ADDRESS = 168, "Framed-IPv6-Address", Ipv6;
    DNS_SERVER_IPV6_ADDRESS = 169, "DNS-Server-IPv6-Address", Ipv6;
}

/// Every standard attribute this crate knows, in type order.
pub static ATTRIBUTES: &[AttrDef] = DICT;

const NONE: u8 = u8::MAX;

const fn build_index() -> [u8; 256] {
    let mut idx = [NONE; 256];
    let mut i = 0;
    while i < DICT.len() {
        idx[DICT[i].typ as usize] = i as u8;
        i += 1;
    }
    idx
}

static INDEX: [u8; 256] = build_index();

const fn build_bounds() -> [(u8, u8); 256] {
    let mut b = [(0u8, 253u8); 256];
    let mut i = 0;
    while i < DICT.len() {
        b[DICT[i].typ as usize] = DICT[i].kind.value_len_bounds();
        i += 1;
    }
    // RFC 3579 §3.2: Message-Authenticator is exactly 16 octets.
    b[MESSAGE_AUTHENTICATOR as usize] = (16, 16);
    b
}

/// Value length bounds per attribute type, used by the decoder (one table lookup per attribute).
pub(crate) static VALUE_LEN_BOUNDS: [(u8, u8); 256] = build_bounds();

/// Definition of a standard attribute.
pub fn by_type(typ: u8) -> Option<&'static AttrDef> {
    match INDEX[typ as usize] {
        NONE => None,
        i => DICT.get(i as usize),
    }
}

/// Definition by name, ASCII case-insensitive (`"user-name"` finds `User-Name`).
pub fn by_name(name: &str) -> Option<&'static AttrDef> {
    DICT.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

/// Vendor (SMI Private Enterprise) numbers.
pub mod vendor {
    /// Cisco.
    pub const CISCO: u32 = 9;
    /// Microsoft (RFC 2548).
    pub const MICROSOFT: u32 = 311;
    /// Extreme Networks.
    pub const EXTREME: u32 = 1916;
    /// Juniper Networks.
    pub const JUNIPER: u32 = 2636;
    /// Aruba Networks (HPE).
    pub const ARUBA: u32 = 14823;
}

/// Cisco vendor attributes.
pub mod cisco {
    /// `Cisco-AVPair` (string `key=value`).
    pub const AVPAIR: u8 = 1;
    /// `Cisco-NAS-Port`.
    pub const NAS_PORT: u8 = 2;
}

/// Microsoft vendor attributes (RFC 2548).
pub mod microsoft {
    /// `MS-CHAP-Response`.
    pub const CHAP_RESPONSE: u8 = 1;
    /// `MS-CHAP-Error`.
    pub const CHAP_ERROR: u8 = 2;
    /// `MS-MPPE-Encryption-Policy`.
    pub const MPPE_ENCRYPTION_POLICY: u8 = 7;
    /// `MS-MPPE-Encryption-Types`.
    pub const MPPE_ENCRYPTION_TYPES: u8 = 8;
    /// `MS-CHAP-Challenge`.
    pub const CHAP_CHALLENGE: u8 = 11;
    /// `MS-MPPE-Send-Key` (salt-encrypted, RFC 2548 §2.4.2).
    pub const MPPE_SEND_KEY: u8 = 16;
    /// `MS-MPPE-Recv-Key` (salt-encrypted, RFC 2548 §2.4.3).
    pub const MPPE_RECV_KEY: u8 = 17;
    /// `MS-CHAP2-Response`.
    pub const CHAP2_RESPONSE: u8 = 25;
    /// `MS-CHAP2-Success`.
    pub const CHAP2_SUCCESS: u8 = 26;
}

/// Aruba vendor attributes.
pub mod aruba {
    /// `Aruba-User-Role`.
    pub const USER_ROLE: u8 = 1;
    /// `Aruba-User-Vlan`.
    pub const USER_VLAN: u8 = 2;
    /// `Aruba-Priv-Admin-User`.
    pub const PRIV_ADMIN_USER: u8 = 3;
    /// `Aruba-Admin-Role`.
    pub const ADMIN_ROLE: u8 = 4;
    /// `Aruba-Essid-Name`.
    pub const ESSID_NAME: u8 = 5;
    /// `Aruba-Location-Id`.
    pub const LOCATION_ID: u8 = 6;
}

/// Juniper vendor attributes.
pub mod juniper {
    /// `Juniper-Local-User-Name`.
    pub const LOCAL_USER_NAME: u8 = 1;
    /// `Juniper-Allow-Commands`.
    pub const ALLOW_COMMANDS: u8 = 2;
    /// `Juniper-Deny-Commands`.
    pub const DENY_COMMANDS: u8 = 3;
}

/// Extreme Networks vendor attributes.
pub mod extreme {
    /// `Extreme-CLI-Authorization`.
    pub const CLI_AUTHORIZATION: u8 = 1;
    /// `Extreme-Shell-Command`.
    pub const SHELL_COMMAND: u8 = 2;
    /// `Extreme-Netlogin-Vlan`.
    pub const NETLOGIN_VLAN: u8 = 3;
    /// `Extreme-Netlogin-Url`.
    pub const NETLOGIN_URL: u8 = 4;
    /// `Extreme-Netlogin-Url-Desc`.
    pub const NETLOGIN_URL_DESC: u8 = 5;
    /// `Extreme-Netlogin-Only`.
    pub const NETLOGIN_ONLY: u8 = 6;
}

/// A vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VendorDef {
    /// Private Enterprise Number.
    pub id: u32,
    /// Name.
    pub name: &'static str,
}

/// A vendor-specific attribute (RFC 2865 §5.26 suggested format: type, length, value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VendorAttrDef {
    /// Vendor id.
    pub vendor: u32,
    /// Vendor type.
    pub typ: u8,
    /// Name.
    pub name: &'static str,
    /// Value type.
    pub kind: AttrKind,
}

/// Known vendors.
pub static VENDORS: &[VendorDef] = &[
    VendorDef {
        id: vendor::CISCO,
        name: "Cisco",
    },
    VendorDef {
        id: vendor::MICROSOFT,
        name: "Microsoft",
    },
    VendorDef {
        id: vendor::EXTREME,
        name: "Extreme",
    },
    VendorDef {
        id: vendor::JUNIPER,
        name: "Juniper",
    },
    VendorDef {
        id: vendor::ARUBA,
        name: "Aruba",
    },
];

macro_rules! vattr {
    ($v:expr, $t:expr, $n:literal, $k:ident) => {
        VendorAttrDef {
            vendor: $v,
            typ: $t,
            name: $n,
            kind: AttrKind::$k,
        }
    };
}

/// Known vendor attributes.
pub static VENDOR_ATTRIBUTES: &[VendorAttrDef] = &[
    vattr!(vendor::CISCO, cisco::AVPAIR, "Cisco-AVPair", Text),
    vattr!(vendor::CISCO, cisco::NAS_PORT, "Cisco-NAS-Port", Text),
    vattr!(
        vendor::MICROSOFT,
        microsoft::CHAP_RESPONSE,
        "MS-CHAP-Response",
        Secret
    ),
    vattr!(
        vendor::MICROSOFT,
        microsoft::CHAP_ERROR,
        "MS-CHAP-Error",
        Text
    ),
    vattr!(
        vendor::MICROSOFT,
        microsoft::MPPE_ENCRYPTION_POLICY,
        "MS-MPPE-Encryption-Policy",
        Integer
    ),
    vattr!(
        vendor::MICROSOFT,
        microsoft::MPPE_ENCRYPTION_TYPES,
        "MS-MPPE-Encryption-Types",
        Integer
    ),
    vattr!(
        vendor::MICROSOFT,
        microsoft::CHAP_CHALLENGE,
        "MS-CHAP-Challenge",
        Octets
    ),
    vattr!(
        vendor::MICROSOFT,
        microsoft::MPPE_SEND_KEY,
        "MS-MPPE-Send-Key",
        Secret
    ),
    vattr!(
        vendor::MICROSOFT,
        microsoft::MPPE_RECV_KEY,
        "MS-MPPE-Recv-Key",
        Secret
    ),
    vattr!(
        vendor::MICROSOFT,
        microsoft::CHAP2_RESPONSE,
        "MS-CHAP2-Response",
        Secret
    ),
    vattr!(
        vendor::MICROSOFT,
        microsoft::CHAP2_SUCCESS,
        "MS-CHAP2-Success",
        Octets
    ),
    vattr!(
        vendor::EXTREME,
        extreme::CLI_AUTHORIZATION,
        "Extreme-CLI-Authorization",
        Integer
    ),
    vattr!(
        vendor::EXTREME,
        extreme::SHELL_COMMAND,
        "Extreme-Shell-Command",
        Text
    ),
    vattr!(
        vendor::EXTREME,
        extreme::NETLOGIN_VLAN,
        "Extreme-Netlogin-Vlan",
        Text
    ),
    vattr!(
        vendor::EXTREME,
        extreme::NETLOGIN_URL,
        "Extreme-Netlogin-Url",
        Text
    ),
    vattr!(
        vendor::EXTREME,
        extreme::NETLOGIN_URL_DESC,
        "Extreme-Netlogin-Url-Desc",
        Text
    ),
    vattr!(
        vendor::EXTREME,
        extreme::NETLOGIN_ONLY,
        "Extreme-Netlogin-Only",
        Integer
    ),
    vattr!(
        vendor::JUNIPER,
        juniper::LOCAL_USER_NAME,
        "Juniper-Local-User-Name",
        Text
    ),
    vattr!(
        vendor::JUNIPER,
        juniper::ALLOW_COMMANDS,
        "Juniper-Allow-Commands",
        Text
    ),
    vattr!(
        vendor::JUNIPER,
        juniper::DENY_COMMANDS,
        "Juniper-Deny-Commands",
        Text
    ),
    vattr!(vendor::ARUBA, aruba::USER_ROLE, "Aruba-User-Role", Text),
    vattr!(vendor::ARUBA, aruba::USER_VLAN, "Aruba-User-Vlan", Integer),
    vattr!(
        vendor::ARUBA,
        aruba::PRIV_ADMIN_USER,
        "Aruba-Priv-Admin-User",
        Integer
    ),
    vattr!(vendor::ARUBA, aruba::ADMIN_ROLE, "Aruba-Admin-Role", Text),
    vattr!(vendor::ARUBA, aruba::ESSID_NAME, "Aruba-Essid-Name", Text),
    vattr!(vendor::ARUBA, aruba::LOCATION_ID, "Aruba-Location-Id", Text),
];

/// Vendor by id.
pub fn vendor_by_id(id: u32) -> Option<&'static VendorDef> {
    VENDORS.iter().find(|v| v.id == id)
}

/// Vendor attribute by vendor id and vendor type.
pub fn vendor_attr(vendor: u32, typ: u8) -> Option<&'static VendorAttrDef> {
    VENDOR_ATTRIBUTES
        .iter()
        .find(|d| d.vendor == vendor && d.typ == typ)
}

/// Vendor attribute by name, ASCII case-insensitive.
pub fn vendor_attr_by_name(name: &str) -> Option<&'static VendorAttrDef> {
    VENDOR_ATTRIBUTES
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
}

/// Named integer values (`VALUE` lines of a FreeRADIUS dictionary).
macro_rules! values {
    ($( $(#[$m:meta])* pub mod $module:ident for $attr:ident { $( $konst:ident = $v:literal, $name:literal; )* } )*) => {
        $(
            $(#[$m])*
            pub mod $module {
                $( #[doc = concat!("`", $name, "`")] pub const $konst: u32 = $v; )*
            }
        )*
        /// Every named value: (attribute type, value, name).
        pub static VALUES: &[(u8, u32, &str)] = &[
            $( $( ($attr, $v, $name), )* )*
        ];
    };
}

values! {
    /// Service-Type (RFC 2865 §5.6, RFC 5176 §3.6).
    pub mod service_type for SERVICE_TYPE {
        LOGIN = 1, "Login-User";
        FRAMED = 2, "Framed-User";
        CALLBACK_LOGIN = 3, "Callback-Login-User";
        CALLBACK_FRAMED = 4, "Callback-Framed-User";
        OUTBOUND = 5, "Outbound-User";
        ADMINISTRATIVE = 6, "Administrative-User";
        NAS_PROMPT = 7, "NAS-Prompt-User";
        AUTHENTICATE_ONLY = 8, "Authenticate-Only";
        CALLBACK_NAS_PROMPT = 9, "Callback-NAS-Prompt";
        CALL_CHECK = 10, "Call-Check";
        CALLBACK_ADMINISTRATIVE = 11, "Callback-Administrative";
        AUTHORIZE_ONLY = 17, "Authorize-Only";
    }
    /// Framed-Protocol (RFC 2865 §5.7).
    pub mod framed_protocol for FRAMED_PROTOCOL {
        PPP = 1, "PPP";
        SLIP = 2, "SLIP";
    }
    /// Login-Service (RFC 2865 §5.15).
    pub mod login_service for LOGIN_SERVICE {
        TELNET = 0, "Telnet";
        RLOGIN = 1, "Rlogin";
        TCP_CLEAR = 2, "TCP-Clear";
        PORTMASTER = 3, "PortMaster";
        LAT = 4, "LAT";
    }
    /// Termination-Action (RFC 2865 §5.29).
    pub mod termination_action for TERMINATION_ACTION {
        DEFAULT = 0, "Default";
        RADIUS_REQUEST = 1, "RADIUS-Request";
    }
    /// Acct-Status-Type (RFC 2866 §5.1).
    pub mod acct_status_type for ACCT_STATUS_TYPE {
        START = 1, "Start";
        STOP = 2, "Stop";
        INTERIM_UPDATE = 3, "Interim-Update";
        ACCOUNTING_ON = 7, "Accounting-On";
        ACCOUNTING_OFF = 8, "Accounting-Off";
        FAILED = 15, "Failed";
    }
    /// Acct-Authentic (RFC 2866 §5.6).
    pub mod acct_authentic for ACCT_AUTHENTIC {
        RADIUS = 1, "RADIUS";
        LOCAL = 2, "Local";
        REMOTE = 3, "Remote";
    }
    /// Acct-Terminate-Cause (RFC 2866 §5.10, RFC 3580 §3.20).
    pub mod terminate_cause for ACCT_TERMINATE_CAUSE {
        USER_REQUEST = 1, "User-Request";
        LOST_CARRIER = 2, "Lost-Carrier";
        LOST_SERVICE = 3, "Lost-Service";
        IDLE_TIMEOUT = 4, "Idle-Timeout";
        SESSION_TIMEOUT = 5, "Session-Timeout";
        ADMIN_RESET = 6, "Admin-Reset";
        ADMIN_REBOOT = 7, "Admin-Reboot";
        PORT_ERROR = 8, "Port-Error";
        NAS_ERROR = 9, "NAS-Error";
        NAS_REQUEST = 10, "NAS-Request";
        NAS_REBOOT = 11, "NAS-Reboot";
        PORT_UNNEEDED = 12, "Port-Unneeded";
        PORT_PREEMPTED = 13, "Port-Preempted";
        PORT_SUSPENDED = 14, "Port-Suspended";
        SERVICE_UNAVAILABLE = 15, "Service-Unavailable";
        CALLBACK = 16, "Callback";
        USER_ERROR = 17, "User-Error";
        HOST_REQUEST = 18, "Host-Request";
        SUPPLICANT_RESTART = 19, "Supplicant-Restart";
        REAUTHENTICATION_FAILURE = 20, "Reauthentication-Failure";
        PORT_REINITIALIZED = 21, "Port-Reinitialized";
        PORT_ADMINISTRATIVELY_DISABLED = 22, "Port-Administratively-Disabled";
    }
    /// NAS-Port-Type (RFC 2865 §5.41, RFC 3580).
    pub mod nas_port_type for NAS_PORT_TYPE {
        ASYNC = 0, "Async";
        SYNC = 1, "Sync";
        ISDN = 2, "ISDN";
        ISDN_V120 = 3, "ISDN-V120";
        ISDN_V110 = 4, "ISDN-V110";
        VIRTUAL = 5, "Virtual";
        PIAFS = 6, "PIAFS";
        HDLC_CLEAR_CHANNEL = 7, "HDLC-Clear-Channel";
        X25 = 8, "X.25";
        X75 = 9, "X.75";
        G3_FAX = 10, "G.3-Fax";
        SDSL = 11, "SDSL";
        ADSL_CAP = 12, "ADSL-CAP";
        ADSL_DMT = 13, "ADSL-DMT";
        IDSL = 14, "IDSL";
        ETHERNET = 15, "Ethernet";
        XDSL = 16, "xDSL";
        CABLE = 17, "Cable";
        WIRELESS_OTHER = 18, "Wireless-Other";
        WIRELESS_802_11 = 19, "Wireless-802.11";
    }
    /// Tunnel-Type (RFC 2868 §3.1, RFC 3580 §3.31).
    pub mod tunnel_type for TUNNEL_TYPE {
        PPTP = 1, "PPTP";
        L2F = 2, "L2F";
        L2TP = 3, "L2TP";
        GRE = 10, "GRE";
        VLAN = 13, "VLAN";
    }
    /// Tunnel-Medium-Type (RFC 2868 §3.2).
    pub mod tunnel_medium_type for TUNNEL_MEDIUM_TYPE {
        IPV4 = 1, "IPv4";
        IPV6 = 2, "IPv6";
        IEEE_802 = 6, "IEEE-802";
    }
    /// Error-Cause (RFC 5176 §3.5).
    pub mod error_cause for ERROR_CAUSE {
        RESIDUAL_SESSION_CONTEXT_REMOVED = 201, "Residual-Session-Context-Removed";
        INVALID_EAP_PACKET = 202, "Invalid-EAP-Packet";
        UNSUPPORTED_ATTRIBUTE = 401, "Unsupported-Attribute";
        MISSING_ATTRIBUTE = 402, "Missing-Attribute";
        NAS_IDENTIFICATION_MISMATCH = 403, "NAS-Identification-Mismatch";
        INVALID_REQUEST = 404, "Invalid-Request";
        UNSUPPORTED_SERVICE = 405, "Unsupported-Service";
        UNSUPPORTED_EXTENSION = 406, "Unsupported-Extension";
        INVALID_ATTRIBUTE_VALUE = 407, "Invalid-Attribute-Value";
        ADMINISTRATIVELY_PROHIBITED = 501, "Administratively-Prohibited";
        REQUEST_NOT_ROUTABLE = 502, "Request-Not-Routable";
        SESSION_CONTEXT_NOT_FOUND = 503, "Session-Context-Not-Found";
        SESSION_CONTEXT_NOT_REMOVABLE = 504, "Session-Context-Not-Removable";
        OTHER_PROXY_PROCESSING_ERROR = 505, "Other-Proxy-Processing-Error";
        RESOURCES_UNAVAILABLE = 506, "Resources-Unavailable";
        REQUEST_INITIATED = 507, "Request-Initiated";
        MULTIPLE_SESSION_SELECTION_UNSUPPORTED = 508, "Multiple-Session-Selection-Unsupported";
    }
}

/// Name of an integer value of a standard attribute (`value_name(SERVICE_TYPE, 10)` is
/// `Some("Call-Check")`). For tagged integers pass the 24-bit value.
pub fn value_name(attr: u8, value: u32) -> Option<&'static str> {
    VALUES
        .iter()
        .find(|(a, v, _)| *a == attr && *v == value)
        .map(|(_, _, n)| *n)
}

/// Integer value by name, ASCII case-insensitive (`value_by_name(NAS_PORT_TYPE, "ethernet")`).
pub fn value_by_name(attr: u8, name: &str) -> Option<u32> {
    VALUES
        .iter()
        .find(|(a, _, n)| *a == attr && n.eq_ignore_ascii_case(name))
        .map(|(_, v, _)| *v)
}

/// Renders a packet for debug logs: `Access-Request id=0 len=56 { User-Name = "nemo", … }`
/// (`{:#}` puts one attribute per line).
///
/// Secrets are never printed: User-Password, CHAP-Password, Tunnel-Password, ARAP-Password,
/// MS-MPPE-Send/Recv-Key and MS-CHAP responses render as `<hidden>`. Long octet strings are
/// truncated. Unknown attributes render as `Attr-N = 0x…`.
pub fn describe<'p>(packet: &'p Packet<'_>) -> impl fmt::Display + 'p {
    Describe(*packet)
}

struct Describe<'a>(Packet<'a>);

const MAX_HEX: usize = 32;

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.0.iter().take(MAX_HEX) {
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > MAX_HEX {
            write!(f, "… ({} octets)", self.0.len())?;
        }
        Ok(())
    }
}

fn u32_of(v: &[u8]) -> Option<u32> {
    v.try_into().ok().map(u32::from_be_bytes)
}

fn write_text(f: &mut fmt::Formatter<'_>, v: &[u8]) -> fmt::Result {
    match std::str::from_utf8(v) {
        Ok(s) => write!(f, "\"{}\"", s.escape_debug()),
        Err(_) => write!(f, "{}", Hex(v)),
    }
}

fn write_value(
    f: &mut fmt::Formatter<'_>,
    attr_for_values: Option<u8>,
    kind: AttrKind,
    v: &[u8],
) -> fmt::Result {
    let named = |n: u32| attr_for_values.and_then(|a| value_name(a, n));
    match kind {
        AttrKind::Secret => f.write_str("<hidden>"),
        AttrKind::Text => write_text(f, v),
        AttrKind::Integer | AttrKind::Date => match u32_of(v) {
            Some(n) => match named(n) {
                Some(name) => f.write_str(name),
                None => write!(f, "{n}"),
            },
            None => write!(f, "{}", Hex(v)),
        },
        AttrKind::Ipv4 => match <[u8; 4]>::try_from(v) {
            Ok(a) => write!(f, "{}", std::net::Ipv4Addr::from(a)),
            Err(_) => write!(f, "{}", Hex(v)),
        },
        AttrKind::Ipv6 => match <[u8; 16]>::try_from(v) {
            Ok(a) => write!(f, "{}", std::net::Ipv6Addr::from(a)),
            Err(_) => write!(f, "{}", Hex(v)),
        },
        AttrKind::Ipv6Prefix => {
            if v.len() >= 2 {
                let mut a = [0u8; 16];
                let n = (v.len() - 2).min(16);
                a[..n].copy_from_slice(&v[2..2 + n]);
                write!(f, "{}/{}", std::net::Ipv6Addr::from(a), v[1])
            } else {
                write!(f, "{}", Hex(v))
            }
        }
        AttrKind::TaggedInteger => match u32_of(v) {
            Some(n) => {
                let (tag, val) = (n >> 24, n & 0x00ff_ffff);
                write!(f, "{tag}:")?;
                match named(val) {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{val}"),
                }
            }
            None => write!(f, "{}", Hex(v)),
        },
        AttrKind::TaggedText => {
            let (tag, rest) = crate::packet::split_tagged_string(v);
            write!(f, "{tag}:")?;
            write_text(f, rest)
        }
        AttrKind::Octets | AttrKind::InterfaceId | AttrKind::Vsa => write!(f, "{}", Hex(v)),
    }
}

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.0;
        let multiline = f.alternate();
        write!(
            f,
            "{} id={} len={} {{",
            p.code(),
            p.identifier(),
            p.as_bytes().len()
        )?;
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            let s = match (multiline, first) {
                (true, _) => "\n  ",
                (false, true) => " ",
                (false, false) => ", ",
            };
            first = false;
            f.write_str(s)
        };
        for a in p.attributes() {
            if a.typ == VENDOR_SPECIFIC {
                if let Some((vendor, subs)) = crate::packet::vsa_parts(a.value) {
                    let mut any = false;
                    for (vt, vv) in subs {
                        any = true;
                        sep(f)?;
                        match vendor_attr(vendor, vt) {
                            Some(d) => {
                                write!(f, "{} = ", d.name)?;
                                write_value(f, None, d.kind, vv)?;
                            }
                            None => {
                                match vendor_by_id(vendor) {
                                    Some(vd) => write!(f, "{}-Attr-{vt} = ", vd.name)?,
                                    None => write!(f, "Vendor-{vendor}-Attr-{vt} = ")?,
                                }
                                write!(f, "{}", Hex(vv))?;
                            }
                        }
                    }
                    if any {
                        continue;
                    }
                }
                sep(f)?;
                write!(f, "Vendor-Specific = {}", Hex(a.value))?;
                continue;
            }
            sep(f)?;
            match by_type(a.typ) {
                Some(d) => {
                    write!(f, "{} = ", d.name)?;
                    write_value(f, Some(a.typ), d.kind, a.value)?;
                }
                None => write!(f, "Attr-{} = {}", a.typ, Hex(a.value))?,
            }
        }
        if multiline {
            f.write_str("\n}")
        } else if first {
            f.write_str("}")
        } else {
            f.write_str(" }")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for d in ATTRIBUTES {
            assert!(seen.insert(d.typ), "duplicate type {}", d.typ);
            assert_eq!(by_type(d.typ), Some(d));
            assert_eq!(by_name(&d.name.to_ascii_lowercase()), Some(d));
            assert_eq!(by_name(&d.name.to_ascii_uppercase()), Some(d));
        }
        assert!(ATTRIBUTES.windows(2).all(|w| w[0].typ < w[1].typ));
        assert_eq!(by_type(17), None);
        assert_eq!(by_name("No-Such-Attribute"), None);
        assert_eq!(by_name("tunnel-private-group-id").map(|d| d.typ), Some(81));
        assert_eq!(
            by_type(USER_PASSWORD).map(|d| d.kind),
            Some(AttrKind::Secret)
        );
        assert_eq!(VALUE_LEN_BOUNDS[NAS_PORT as usize], (4, 4));
        assert_eq!(VALUE_LEN_BOUNDS[MESSAGE_AUTHENTICATOR as usize], (16, 16));
        assert_eq!(VALUE_LEN_BOUNDS[USER_NAME as usize], (0, 253));
        assert_eq!(VALUE_LEN_BOUNDS[200], (0, 253));
        let mut seen = std::collections::HashSet::new();
        for d in VENDOR_ATTRIBUTES {
            assert!(seen.insert((d.vendor, d.typ)));
            assert!(vendor_by_id(d.vendor).is_some());
            assert_eq!(vendor_attr_by_name(d.name), Some(d));
        }
    }

    #[test]
    fn named_values() {
        assert_eq!(value_name(SERVICE_TYPE, 10), Some("Call-Check"));
        assert_eq!(value_by_name(SERVICE_TYPE, "call-check"), Some(10));
        assert_eq!(value_by_name(NAS_PORT_TYPE, "Ethernet"), Some(15));
        assert_eq!(value_name(NAS_PORT_TYPE, 19), Some("Wireless-802.11"));
        assert_eq!(value_name(NAS_PORT_TYPE, 5), Some("Virtual"));
        assert_eq!(acct_status_type::ACCOUNTING_OFF, 8);
        assert_eq!(value_name(ACCT_STATUS_TYPE, 3), Some("Interim-Update"));
        assert_eq!(value_name(TUNNEL_TYPE, tunnel_type::VLAN), Some("VLAN"));
        assert_eq!(
            value_name(TUNNEL_MEDIUM_TYPE, tunnel_medium_type::IEEE_802),
            Some("IEEE-802")
        );
        assert_eq!(
            value_name(ERROR_CAUSE, 503),
            Some("Session-Context-Not-Found")
        );
        assert_eq!(value_name(USER_NAME, 1), None);
        let mut seen = std::collections::HashSet::new();
        for (a, v, _) in VALUES {
            assert!(seen.insert((*a, *v)), "duplicate value {a}/{v}");
        }
    }
}
