/// `<IntRangeExpr>` (2023-09 §3.4.1.1.1): `1-100`, `1-100:10`, `50, 60-100:5, 1-10`, `10-1:-1`.
/// The ranges are ordered by their start; no two may overlap; each keeps its own direction.
public struct IntRangeExpression: Sendable, Equatable {
    public struct Piece: Sendable, Equatable {
        public var start: Int
        public var end: Int
        public var step: Int
        public var count: Int { (end - start) / step + 1 }
        var low: Int { step > 0 ? start : end }
        var high: Int { step > 0 ? end : start }
        func value(_ i: Int) -> Int { start + i * step }
    }
    public let pieces: [Piece]
    public var count: Int { pieces.reduce(0) { $0 + $1.count } }
    public var values: [Int] { pieces.flatMap { piece in (0..<piece.count).map(piece.value) } }

    static let bound = 1 << 48

    init(_ text: String, at path: FieldPath) throws(OpenJDError) {
        let quoted = "'\(text.prefix(128))'"
        guard !text.trimmingSpaces.isEmpty else { throw path.error("the range expression is empty") }
        var pieces: [Piece] = []
        for element in text.split(separator: ",", omittingEmptySubsequences: false) {
            var scanner = RangeScanner(Array(element.unicodeScalars))
            scanner.skipSpace()
            guard let start = scanner.integer() else {
                throw path.error("\(quoted) is not a range expression: an element must start with an integer")
            }
            scanner.skipSpace()
            var end = start
            var step = 1
            if scanner.take("-") {
                scanner.skipSpace()
                guard let last = scanner.integer() else { throw path.error("\(quoted): a range needs an integer after '-'") }
                end = last
                scanner.skipSpace()
                if scanner.take(":") {
                    scanner.skipSpace()
                    guard let skip = scanner.integer() else { throw path.error("\(quoted): a step needs an integer after ':'") }
                    step = skip
                    scanner.skipSpace()
                } else if end < start {
                    throw path.error("\(quoted): the descending range \(start)-\(end) needs a negative step (such as \(start)-\(end):-1)")
                }
            }
            guard scanner.atEnd else {
                throw path.error("\(quoted) is not a range expression (elements look like 7, 1-10 or 1-10:2)")
            }
            guard abs(start) <= Self.bound, abs(end) <= Self.bound, abs(step) <= Self.bound else {
                throw path.error("\(quoted): numbers must be within ±\(Self.bound)")
            }
            guard step != 0 else { throw path.error("\(quoted): a range's step cannot be zero") }
            if end < start, step > 0 {
                throw path.error("\(quoted): the descending range \(start)-\(end) needs a negative step")
            }
            if end > start, step < 0 {
                throw path.error("\(quoted): the ascending range \(start)-\(end) needs a positive step")
            }
            // The last value actually reached (1-10:4 ends at 9).
            let reached = start + ((end - start) / step) * step
            pieces.append(Piece(start: start, end: reached, step: step))
        }
        pieces.sort { ($0.start, $0.end, $0.step) < ($1.start, $1.end, $1.step) }
        let byLow = pieces.sorted { $0.low < $1.low }
        for (a, b) in zip(byLow, byLow.dropFirst()) where b.low <= a.high {
            throw path.error("\(quoted): the ranges \(Self.show(a)) and \(Self.show(b)) overlap")
        }
        self.pieces = pieces
    }

    static func show(_ piece: Piece) -> String {
        if piece.start == piece.end { return "\(piece.start)" }
        return piece.step == 1 ? "\(piece.start)-\(piece.end)" : "\(piece.start)-\(piece.end):\(piece.step)"
    }
}

struct RangeScanner {
    let scalars: [Unicode.Scalar]
    var index = 0
    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }
    var atEnd: Bool { index == scalars.count }
    mutating func skipSpace() { while index < scalars.count, scalars[index] == " " || scalars[index] == "\t" { index += 1 } }
    mutating func take(_ c: Unicode.Scalar) -> Bool {
        guard index < scalars.count, scalars[index] == c else { return false }
        index += 1
        return true
    }
    /// An optional '-' then base-10 digits.
    mutating func integer() -> Int? {
        let start = index
        if index < scalars.count, scalars[index] == "-" { index += 1 }
        let digitsStart = index
        while index < scalars.count, ("0"..."9").contains(scalars[index]), index - digitsStart < 18 { index += 1 }
        guard index > digitsStart else { index = start; return nil }
        return Int(String(String.UnicodeScalarView(scalars[start..<index])))
    }
}

/// `<CombinationExpr>` (2023-09 §3.4.3): products `A * B` (the last varies fastest) and
/// associations `(A, B)` (element by element), nested; every task parameter exactly once.
indirect enum CombinationExpression: Equatable {
    case parameter(String)
    case product([CombinationExpression])
    case association([CombinationExpression])

    init(_ text: String, parameters: [String], at path: FieldPath) throws(OpenJDError) {
        var parser = CombinationParser(text: text, path: path)
        self = try parser.expression()
        parser.skipSpace()
        guard parser.atEnd else { throw parser.fail("unexpected '\(parser.rest.prefix(16))'") }
        let used = self.names
        for name in used where !parameters.contains(name) {
            throw path.error("'\(name)' is not a task parameter of this step")
        }
        var seen: Set<String> = []
        for name in used where !seen.insert(name).inserted {
            throw path.error("each task parameter may appear only once in the expression; '\(name)' appears more than once")
        }
        if let missing = parameters.first(where: { !seen.contains($0) }) {
            throw path.error("every task parameter must appear in the expression; '\(missing)' does not")
        }
    }

    var names: [String] {
        switch self {
        case .parameter(let name): [name]
        case .product(let items), .association(let items): items.flatMap(\.names)
        }
    }
}

struct CombinationParser {
    let scalars: [Unicode.Scalar]
    var index = 0
    let path: FieldPath
    var depth = 0

    init(text: String, path: FieldPath) {
        scalars = Array(text.unicodeScalars)
        self.path = path
    }

    var atEnd: Bool { index == scalars.count }
    var rest: String { String(String.UnicodeScalarView(scalars[index...])) }
    func fail(_ message: String) -> OpenJDError {
        path.error("'\(String(String.UnicodeScalarView(scalars)).prefix(128))' is not a combination expression: \(message)")
    }
    mutating func skipSpace() { while index < scalars.count, scalars[index] == " " { index += 1 } }
    mutating func take(_ c: Unicode.Scalar) -> Bool {
        skipSpace()
        guard index < scalars.count, scalars[index] == c else { return false }
        index += 1
        return true
    }

    mutating func expression() throws(OpenJDError) -> CombinationExpression {
        var items = [try element()]
        while take("*") { items.append(try element()) }
        return items.count == 1 ? items[0] : .product(items)
    }

    mutating func element() throws(OpenJDError) -> CombinationExpression {
        if take("(") {
            depth += 1
            guard depth <= 32 else { throw fail("nested too deeply") }
            var items = [try expression()]
            while take(",") { items.append(try expression()) }
            guard take(")") else { throw fail("expected ',' or ')'") }
            depth -= 1
            guard items.count > 1 else { throw fail("an association '( ... )' must have more than one term") }
            return .association(items)
        }
        skipSpace()
        let start = index
        while index < scalars.count,
              ("a"..."z").contains(scalars[index]) || ("A"..."Z").contains(scalars[index])
                || ("0"..."9").contains(scalars[index]) || scalars[index] == "_" { index += 1 }
        guard index > start else { throw fail(atEnd ? "it ends where a parameter name is expected" : "expected a parameter name at '\(rest.prefix(16))'") }
        let name = String(String.UnicodeScalarView(scalars[start..<index]))
        guard name.isOpenJDIdentifier else { throw fail("'\(name)' is not an identifier") }
        return .parameter(name)
    }
}
