import Foundation
import PaddockProtocol
import Testing

/// Named tokens and agent resets in the OpenAPI document, against the Swift types.
extension OpenAPITests {
    @Test func tokenSchemasMatchTheSwiftTypes() throws {
        #expect(doc.list("enum", of: "TokenRole") == TokenRole.allCases.map(\.rawValue))
        #expect(doc.list("enum", of: "TokenState") == TokenState.allCases.map(\.rawValue))
        let date = Date(timeIntervalSince1970: 1_750_000_000)
        let view = TokenView(id: TokenID(rawValue: 7), name: "ci", role: .join, state: .usedUp, createdAt: date,
                             expiresAt: date, revokedAt: date, uses: 2, maxUses: 2)
        expectSchema("TokenView", describes: try Self.keys(view))
        expectSchema("CreatedToken", describes: try Self.keys(CreatedToken(token: view, secret: "pt_x")))
        expectSchema("WhoAmI", describes: try Self.keys(WhoAmI(name: "ci", role: "submit", token: view.id, expiresAt: date)))
        expectSchema("AgentResetResult", describes: try Self.keys(
            AgentResetResult(name: "a", outcome: .reset, agent: AgentID(rawValue: 1))))
        let decoded = try WireJSON.decoder().decode(TokenView.self, from: try WireJSON.encoder().encode(view))
        #expect(decoded == view)
    }

    @Test func enrollmentConflictsAndTokenFailuresAreDocumented() throws {
        let enroll = try operation(.enrollAgent)
        #expect(enroll.statuses.contains("409") && enroll.mentions("#/components/responses/EnrollConflict"))
        let conflict = try #require(doc.component("responses", "EnrollConflict"))
        #expect(OpenAPIOutline.mentions(conflict, "agent_name_taken") && OpenAPIOutline.mentions(conflict, "agent_deleted"))
        let unauthorized = try #require(doc.component("responses", "Unauthorized"))
        #expect(["expired", "revoked", "used up"].allSatisfy { OpenAPIOutline.mentions(unauthorized, $0) })
        #expect(try operation(.resetAgent).statuses.contains("404"))
    }
}
