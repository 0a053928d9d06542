//! A minimal zip archive of stored (uncompressed) entries: what a training set needs (photos are compressed
//! already) and what the sandbox reads back. Written by hand over `crc32fast`; the reader accepts only this
//! layout (stored entries, no zip64, no encryption) and refuses anything else as broken.

/// Writes `entries` (name, bytes) as a zip of stored entries.
pub fn write_stored(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, bytes) in entries {
        let offset =
            u32::try_from(out.len()).map_err(|_| "the zip would exceed 4 GB".to_string())?;
        let size = u32::try_from(bytes.len()).map_err(|_| format!("{name} is larger than 4 GB"))?;
        let name_len = u16::try_from(name.len()).map_err(|_| format!("{name}: name too long"))?;
        let crc = crc32fast::hash(bytes);
        let common = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&0u16.to_le_bytes()); // method: stored
            v.extend_from_slice(&0u32.to_le_bytes()); // time, date
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&name_len.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(bytes);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attrs
        central.extend_from_slice(&0u32.to_le_bytes()); // external attrs
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let count = u16::try_from(entries.len()).map_err(|_| "too many entries".to_string())?;
    let central_offset = u32::try_from(out.len()).map_err(|_| "the zip would exceed 4 GB")?;
    let central_len = u32::try_from(central.len()).map_err(|_| "the zip would exceed 4 GB")?;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&central_len.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(out)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the entries of a zip of stored entries (as [`write_stored`] makes them), checking each CRC; `Err` says
/// why the archive is broken.
pub fn read_stored(zip: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    while u32_at(zip, at) == Some(0x0403_4b50) {
        let broken = || format!("truncated entry at byte {at}");
        let method = u16_at(zip, at + 8).ok_or_else(broken)?;
        let crc = u32_at(zip, at + 14).ok_or_else(broken)?;
        let size = u32_at(zip, at + 18).ok_or_else(broken)? as usize;
        let name_len = u16_at(zip, at + 26).ok_or_else(broken)? as usize;
        let extra_len = u16_at(zip, at + 28).ok_or_else(broken)? as usize;
        if method != 0 {
            return Err(format!(
                "entry at byte {at} is compressed (method {method})"
            ));
        }
        let name_at = at + 30;
        let data_at = name_at + name_len + extra_len;
        let name = zip.get(name_at..name_at + name_len).ok_or_else(broken)?;
        let data = zip.get(data_at..data_at + size).ok_or_else(broken)?;
        if crc32fast::hash(data) != crc {
            return Err(format!(
                "entry {} fails its CRC check",
                String::from_utf8_lossy(name)
            ));
        }
        entries.push((String::from_utf8_lossy(name).into_owned(), data.to_vec()));
        at = data_at + size;
    }
    if u32_at(zip, at) != Some(0x0201_4b50) && u32_at(zip, at) != Some(0x0605_4b50) {
        return Err("not a zip archive (no central directory where it should be)".into());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_found() {
        let entries = vec![
            ("a.jpg".to_string(), vec![1, 2, 3]),
            ("a.txt".to_string(), b"a photo of TOK".to_vec()),
        ];
        let zip = write_stored(&entries).unwrap();
        assert_eq!(read_stored(&zip).unwrap(), entries);
        let mut damaged = zip.clone();
        damaged[31 + 4] ^= 0xFF;
        assert!(read_stored(&damaged).unwrap_err().contains("CRC"));
        assert!(read_stored(b"not a zip").is_err());
        assert!(read_stored(&zip[..40]).is_err());
    }
}
