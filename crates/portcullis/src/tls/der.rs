//! Just enough DER to log which certificate is being served: its serial
//! number and when it expires (RFC 5280 §4.1). Anything unexpected gives
//! `None`; the certificate itself has been checked by rustls already.

/// What the log says about a certificate.
pub(super) struct LeafFields {
    /// Serial number, lowercase hex.
    pub(super) serial: String,
    /// `notAfter`, as `YYYY-MM-DDTHH:MM:SSZ`.
    pub(super) not_after: String,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Serial number and expiry of a DER certificate.
pub(super) fn leaf_fields(cert: &[u8]) -> Option<LeafFields> {
    let (SEQUENCE, certificate, _) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(certificate)? else {
        return None;
    };
    let (mut tag, mut serial, mut rest) = tlv(tbs)?;
    if tag == VERSION {
        (tag, serial, rest) = tlv(rest)?;
    }
    if tag != INTEGER {
        return None;
    }
    let (_signature, _, rest) = tlv(rest)?;
    let (_issuer, _, rest) = tlv(rest)?;
    let (SEQUENCE, validity, _) = tlv(rest)? else {
        return None;
    };
    let (_not_before, _, validity) = tlv(validity)?;
    let (tag, not_after, _) = tlv(validity)?;
    // A leading zero only keeps a high-bit serial positive.
    let serial = match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        s => s,
    };
    Some(LeafFields {
        serial: serial.iter().map(|b| format!("{b:02x}")).collect(),
        not_after: time(tag, not_after)?,
    })
}

/// One element: its tag, its contents and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        (bytes.iter().fold(0, |acc, &b| acc << 8 | usize::from(b)), rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`), the two forms RFC 5280 §4.1.2.5 allows.
fn time(tag: u8, t: &[u8]) -> Option<String> {
    let digits = t.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = std::str::from_utf8(digits).ok()?;
    let full = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let century = if digits < "50" { "20" } else { "19" };
            format!("{century}{digits}")
        }
        (GENERALIZED_TIME, 14) => digits.to_owned(),
        _ => return None,
    };
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n if n < 0x80 => out.push(u8::try_from(n).expect("short")),
            n => {
                out.push(0x82);
                out.extend_from_slice(&u16::try_from(n).expect("length").to_be_bytes());
            }
        }
        out.extend_from_slice(contents);
        out
    }

    fn cert(version: bool, serial: &[u8], not_after: Vec<u8>, issuer_len: usize) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(el(VERSION, &el(INTEGER, &[2])));
        }
        tbs.extend(el(INTEGER, serial));
        tbs.extend(el(SEQUENCE, &el(0x06, &[0x2a, 0x86])));
        tbs.extend(el(SEQUENCE, &vec![0x31; issuer_len]));
        let validity = [el(UTC_TIME, b"250101000000Z"), not_after].concat();
        tbs.extend(el(SEQUENCE, &validity));
        tbs.extend(el(SEQUENCE, b"subject and the rest"));
        el(
            SEQUENCE,
            &[el(SEQUENCE, &tbs), el(SEQUENCE, b"alg"), el(0x03, b"sig")].concat(),
        )
    }

    #[test]
    fn serial_and_expiry_are_read_from_a_certificate() {
        let f = leaf_fields(&cert(true, &[0x00, 0xbe, 0xef], el(UTC_TIME, b"491231235959Z"), 10)).expect("fields");
        assert_eq!(f.serial, "beef");
        assert_eq!(f.not_after, "2049-12-31T23:59:59Z");
        // Long-form lengths, no version, GeneralizedTime.
        let f = leaf_fields(&cert(false, &[7], el(GENERALIZED_TIME, b"21060207062815Z"), 300)).expect("fields");
        assert_eq!(f.serial, "07");
        assert_eq!(f.not_after, "2106-02-07T06:28:15Z");
        let f = leaf_fields(&cert(true, &[1], el(UTC_TIME, b"991231235959Z"), 1)).expect("fields");
        assert_eq!(f.not_after, "1999-12-31T23:59:59Z");
    }

    #[test]
    fn anything_unexpected_gives_nothing() {
        assert!(leaf_fields(b"").is_none());
        assert!(leaf_fields(b"not der at all").is_none());
        assert!(leaf_fields(&cert(true, &[1], el(UTC_TIME, b"4912312359Z"), 1)).is_none());
        assert!(leaf_fields(&cert(true, &[1], el(UTC_TIME, b"49123123595aZ"), 1)).is_none());
        let whole = cert(true, &[1], el(UTC_TIME, b"491231235959Z"), 1);
        assert!(leaf_fields(&whole[..whole.len() / 2]).is_none());
        assert!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
    }
}
