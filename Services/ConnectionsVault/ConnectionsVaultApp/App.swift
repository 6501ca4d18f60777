import ConnectionsVault
import Platform

@main
struct App {
    static func main() async {
        let arguments = CommandLine.arguments
        if arguments.dropFirst().first == "rewrap" {
            await ServiceMain.runCommand(
                serviceName: ConnectionsVaultService.name, defaultPort: ConnectionsVaultService.defaultPort,
                arguments: [arguments[0]] + arguments.dropFirst(2), command: ConnectionsVaultService.rewrap)
        }
        await ServiceMain.run(serviceName: ConnectionsVaultService.name, defaultPort: ConnectionsVaultService.defaultPort, build: ConnectionsVaultService.buildApplication)
    }
}
