import Observability
import Platform

@main
struct App {
    static func main() async {
        await ServiceMain.run(serviceName: ObservabilityService.name, defaultPort: ObservabilityService.defaultPort, build: ObservabilityService.buildApplication)
    }
}
