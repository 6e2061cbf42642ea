import Foundation

/// One encoder and decoder configuration for the whole wire: ISO 8601 UTC times, sorted keys.
public enum WireJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// A decoding failure said in one line a user can act on, with the field path when known.
    public static func describe(_ error: any Error) -> PaddockError {
        if let refusal = error as? PaddockError { return refusal }  // a decoder's own answer (413 for a template too big)
        guard let error = error as? DecodingError else { return .malformed("body is not valid JSON") }
        func path(_ keys: [any CodingKey]) -> String? {
            let parts = keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            guard !parts.isEmpty else { return nil }
            return parts.reduce("") { acc, part in
                part.hasPrefix("[") || acc.isEmpty ? acc + part : acc + "." + part
            }
        }
        switch error {
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return .malformed("body is not valid JSON") }
            return .invalid(context.debugDescription, field: path(context.codingPath))
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return .invalid("missing field '\(key.stringValue)'" +
                (context.debugDescription.hasPrefix("No value") ? "" : ": \(context.debugDescription)"), field: field)
        case .typeMismatch(let type, let context):
            return .invalid("wrong type: expected \(type)", field: path(context.codingPath))
        case .valueNotFound(let type, let context):
            return .invalid("missing value: expected \(type)", field: path(context.codingPath))
        @unknown default:
            return .malformed("body could not be decoded")
        }
    }
}
