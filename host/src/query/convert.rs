//! Conversion between PostgreSQL values and the contract's `sql-value`.
//!
//! Result columns are decoded from PostgreSQL's binary format by type:
//! booleans, integers, floating point, NUMERIC (to the nearest double),
//! text-like types, `date`, `uuid`, `timestamp` and `timestamptz` (infinite
//! values kept as `infinity` / `-infinity`), `json` and `jsonb`. Any other
//! type is an error that tells the detector which cast to write.

use std::error::Error;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type};

use crate::contract::SqlValue;

type BoxError = Box<dyn Error + Sync + Send>;

/// A column value as the server sent it, before conversion.
pub struct RawValue<'a>(pub Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawValue<'a> {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(RawValue(Some(raw)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, BoxError> {
        Ok(RawValue(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// Converts one column value; the error says which type could not be
/// converted and which cast would help.
pub fn to_sql_value(ty: &Type, raw: Option<&[u8]>) -> Result<SqlValue, String> {
    let Some(raw) = raw else {
        return Ok(SqlValue::Null);
    };
    let value = match *ty {
        Type::BOOL => SqlValue::Boolean(decode::<bool>(ty, raw)?),
        Type::INT2 => SqlValue::Integer(decode::<i16>(ty, raw)?.into()),
        Type::INT4 => SqlValue::Integer(decode::<i32>(ty, raw)?.into()),
        Type::INT8 => SqlValue::Integer(decode::<i64>(ty, raw)?),
        Type::OID => SqlValue::Integer(decode::<u32>(ty, raw)?.into()),
        Type::FLOAT4 => SqlValue::Float(decode::<f32>(ty, raw)?.into()),
        Type::FLOAT8 => SqlValue::Float(decode::<f64>(ty, raw)?),
        Type::NUMERIC => SqlValue::Float(numeric_to_f64(raw)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            SqlValue::Text(utf8(raw)?)
        }
        Type::UUID => SqlValue::Text(uuid_text(raw)?),
        Type::DATE => SqlValue::Text(date_text(raw)?),
        Type::TIMESTAMP => SqlValue::Timestamp(timestamp_text(raw, false)?),
        Type::TIMESTAMPTZ => SqlValue::Timestamptz(timestamp_text(raw, true)?),
        Type::JSON => SqlValue::Json(utf8(raw)?),
        Type::JSONB => match raw.split_first() {
            Some((1, json)) => SqlValue::Json(utf8(json)?),
            _ => return Err("unsupported jsonb format version from the server".into()),
        },
        _ if matches!(ty.kind(), Kind::Enum(_)) => SqlValue::Text(utf8(raw)?),
        _ => return Err(unsupported_type(ty)),
    };
    Ok(value)
}

fn unsupported_type(ty: &Type) -> String {
    let hint = match ty.kind() {
        Kind::Array(_) => "use array_to_string(column, ',') or unnest()",
        _ if *ty == Type::INTERVAL => "use extract(epoch from column) for seconds, or column::text",
        _ => "cast it in SQL, for example column::text",
    };
    format!("type {} cannot be passed to a detector; {hint}", ty.name())
}

fn decode<'a, T: FromSql<'a>>(ty: &Type, raw: &'a [u8]) -> Result<T, String> {
    T::from_sql(ty, raw).map_err(|error| format!("cannot decode {}: {error}", ty.name()))
}

fn utf8(raw: &[u8]) -> Result<String, String> {
    String::from_utf8(raw.to_vec()).map_err(|_| "the server sent text that is not UTF-8".into())
}

fn uuid_text(raw: &[u8]) -> Result<String, String> {
    if raw.len() != 16 {
        return Err("a uuid must be 16 bytes".into());
    }
    let hex = hex::encode(raw);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Days and microseconds in PostgreSQL's binary formats count from this day.
fn postgres_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .expect("2000-01-01 is a valid date")
}

fn date_text(raw: &[u8]) -> Result<String, String> {
    let days = i32::from_be_bytes(raw.try_into().map_err(|_| "a date must be 4 bytes")?);
    match days {
        i32::MAX => return Ok("infinity".into()),
        i32::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let date = postgres_epoch().date() + TimeDelta::days(days.into());
    Ok(date.format("%Y-%m-%d").to_string())
}

fn timestamp_text(raw: &[u8], with_zone: bool) -> Result<String, String> {
    let micros = i64::from_be_bytes(raw.try_into().map_err(|_| "a timestamp must be 8 bytes")?);
    match micros {
        i64::MAX => return Ok("infinity".into()),
        i64::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let time = postgres_epoch()
        .checked_add_signed(TimeDelta::microseconds(micros))
        .ok_or("the timestamp is out of range")?;
    if with_zone {
        Ok(DateTime::<Utc>::from_naive_utc_and_offset(time, Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true))
    } else {
        Ok(time.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
    }
}

/// Decodes PostgreSQL's binary NUMERIC to the nearest `f64`.
///
/// The format is a header (digit count, weight of the first digit in powers
/// of 10000, sign, display scale) and base-10000 digits. The digits are
/// written out as decimal text and parsed, so the result is correctly
/// rounded.
pub fn numeric_to_f64(raw: &[u8]) -> Result<f64, String> {
    let word = |index: usize| -> Result<u16, String> {
        raw.get(index * 2..index * 2 + 2)
            .map(|bytes| u16::from_be_bytes([bytes[0], bytes[1]]))
            .ok_or_else(|| "truncated numeric value from the server".to_string())
    };
    let digit_count = word(0)? as usize;
    let weight = word(1)? as i16;
    let sign = word(2)?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok(f64::NAN),
        0xD000 => return Ok(f64::INFINITY),
        0xF000 => return Ok(f64::NEG_INFINITY),
        _ => return Err(format!("unknown numeric sign 0x{sign:04x} from the server")),
    }
    if digit_count == 0 {
        return Ok(0.0);
    }

    let mut text = String::with_capacity(digit_count * 4 + 8);
    if sign == 0x4000 {
        text.push('-');
    }
    for index in 0..digit_count {
        let digit = word(4 + index)?;
        if digit > 9999 {
            return Err("invalid numeric digit from the server".into());
        }
        text.push_str(&format!("{digit:04}"));
    }
    // The last base-10000 digit has weight `weight - (digit_count - 1)`.
    let exponent = 4 * (i64::from(weight) - (digit_count as i64 - 1));
    text.push_str(&format!("e{exponent}"));
    text.parse::<f64>()
        .map_err(|error| format!("cannot convert numeric: {error}"))
}

/// A query parameter with the PostgreSQL type its case is sent as.
#[derive(Debug)]
pub struct Param {
    value: ParamValue,
}

#[derive(Debug)]
enum ParamValue {
    Null,
    Boolean(bool),
    Integer(i64),
    Float(f64),
    Text(String),
    Timestamp(NaiveDateTime),
    Timestamptz(DateTime<Utc>),
    Json(serde_json::Value),
}

impl Param {
    /// Converts the `index`-th parameter (0-based); the error names it as
    /// `$n`.
    pub fn new(index: usize, value: &SqlValue) -> Result<Param, String> {
        let position = index + 1;
        let value = match value {
            SqlValue::Null => ParamValue::Null,
            SqlValue::Boolean(value) => ParamValue::Boolean(*value),
            SqlValue::Integer(value) => ParamValue::Integer(*value),
            SqlValue::Float(value) => ParamValue::Float(*value),
            SqlValue::Text(value) => ParamValue::Text(value.clone()),
            SqlValue::Timestamp(text) => ParamValue::Timestamp(
                NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| {
                    format!(
                        "parameter ${position}: {text:?} is not a timestamp such as \
                         2026-02-18T14:03:07.512"
                    )
                })?,
            ),
            SqlValue::Timestamptz(text) => ParamValue::Timestamptz(
                DateTime::parse_from_rfc3339(text)
                    .map_err(|_| {
                        format!(
                            "parameter ${position}: {text:?} is not an RFC 3339 timestamp such \
                             as 2026-02-18T14:03:07Z"
                        )
                    })?
                    .with_timezone(&Utc),
            ),
            SqlValue::Json(text) => ParamValue::Json(
                serde_json::from_str(text)
                    .map_err(|error| format!("parameter ${position}: invalid JSON: {error}"))?,
            ),
        };
        Ok(Param { value })
    }

    /// The type the parameter is declared with. NULL is sent untyped, so
    /// the server infers its type from the statement.
    pub fn pg_type(&self) -> Type {
        match self.value {
            ParamValue::Null => Type::UNKNOWN,
            ParamValue::Boolean(_) => Type::BOOL,
            ParamValue::Integer(_) => Type::INT8,
            ParamValue::Float(_) => Type::FLOAT8,
            ParamValue::Text(_) => Type::TEXT,
            ParamValue::Timestamp(_) => Type::TIMESTAMP,
            ParamValue::Timestamptz(_) => Type::TIMESTAMPTZ,
            ParamValue::Json(_) => Type::JSONB,
        }
    }
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match &self.value {
            ParamValue::Null => Ok(IsNull::Yes),
            ParamValue::Boolean(value) => value.to_sql(ty, out),
            ParamValue::Integer(value) => value.to_sql(ty, out),
            ParamValue::Float(value) => value.to_sql(ty, out),
            ParamValue::Text(value) => value.to_sql(ty, out),
            ParamValue::Timestamp(value) => value.to_sql(ty, out),
            ParamValue::Timestamptz(value) => value.to_sql(ty, out),
            ParamValue::Json(value) => value.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(digits: &[u16], weight: i16, sign: u16, scale: u16) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend((digits.len() as u16).to_be_bytes());
        raw.extend(weight.to_be_bytes());
        raw.extend(sign.to_be_bytes());
        raw.extend(scale.to_be_bytes());
        for digit in digits {
            raw.extend(digit.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numeric_decodes_to_nearest_double() {
        // 0.69 is one digit 6900 with weight -1.
        assert_eq!(numeric_to_f64(&numeric(&[6900], -1, 0, 2)).unwrap(), 0.69);
        // 12345.678 is 1, 2345, 6780 with weight 1.
        assert_eq!(
            numeric_to_f64(&numeric(&[1, 2345, 6780], 1, 0, 3)).unwrap(),
            12345.678
        );
        assert_eq!(numeric_to_f64(&numeric(&[7], 0, 0x4000, 0)).unwrap(), -7.0);
        assert_eq!(numeric_to_f64(&numeric(&[], 0, 0, 0)).unwrap(), 0.0);
        assert!(numeric_to_f64(&numeric(&[], 0, 0xC000, 0))
            .unwrap()
            .is_nan());
        assert_eq!(
            numeric_to_f64(&numeric(&[], 0, 0xD000, 0)).unwrap(),
            f64::INFINITY
        );
    }

    #[test]
    fn truncated_numeric_is_an_error() {
        let mut raw = numeric(&[1, 2], 0, 0, 0);
        raw.truncate(raw.len() - 1);
        assert!(numeric_to_f64(&raw).is_err());
    }

    #[test]
    fn timestamps_render_with_and_without_zone() {
        let micros: i64 = 86_400 * 1_000_000 + 512_000;
        let raw = micros.to_be_bytes();
        assert_eq!(
            timestamp_text(&raw, false).unwrap(),
            "2000-01-02T00:00:00.512"
        );
        assert_eq!(
            timestamp_text(&raw, true).unwrap(),
            "2000-01-02T00:00:00.512Z"
        );
        assert_eq!(
            timestamp_text(&i64::MAX.to_be_bytes(), true).unwrap(),
            "infinity"
        );
        assert_eq!(
            timestamp_text(&i64::MIN.to_be_bytes(), false).unwrap(),
            "-infinity"
        );
    }

    #[test]
    fn null_converts_for_any_type() {
        assert_eq!(to_sql_value(&Type::INTERVAL, None).unwrap(), SqlValue::Null);
    }

    #[test]
    fn unsupported_type_names_cast() {
        let error = to_sql_value(&Type::INTERVAL, Some(&[0; 16])).unwrap_err();
        assert!(error.contains("interval"), "{error}");
        assert!(error.contains("extract(epoch"), "{error}");
    }

    #[test]
    fn bad_timestamp_parameter_names_position() {
        let error = Param::new(1, &SqlValue::Timestamptz("yesterday".into())).unwrap_err();
        assert!(error.starts_with("parameter $2"), "{error}");
    }
}
