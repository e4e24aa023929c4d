"""Phrase tables of the synthetic sample (see sample.py): per language, templates with priority cues.

Written for this project. Priority is carried by the subject prefix and one cue sentence, so a small model can
learn it; topics, products and the rest of the text vary independently of priority.
"""

from __future__ import annotations

from typing import Final, TypedDict


class CueSet(TypedDict):
    subjects: tuple[str, ...]
    sentences: tuple[str, ...]


class LanguagePhrases(TypedDict):
    greetings: tuple[str, ...]
    closings: tuple[str, ...]
    topics: tuple[tuple[str, tuple[str, ...]], ...]
    cues: dict[str, CueSet]
    details: tuple[str, ...]
    answer: str


PRODUCTS: Final = (
    "Zoom",
    "Jira",
    "Salesforce",
    "SAP",
    "Outlook",
    "Slack",
    "Shopify",
    "Dropbox",
    "QuickBooks",
    "AWS",
)

#: (queue, type) of each topic, in the order of the per-language "topics" lists.
TOPICS: Final = (
    ("Technical Support", "Incident"),
    ("Billing and Payments", "Request"),
    ("IT Support", "Problem"),
    ("Service Outages and Maintenance", "Incident"),
    ("Product Support", "Request"),
    ("Customer Service", "Change"),
)

# Per language: greetings, closings, topics (short subject noun + two issue sentences each, {p} = product),
# cues (per priority: subject templates and cue sentences), details (neutral extra sentences), answers.
PHRASES: Final[dict[str, LanguagePhrases]] = {
    "en": {
        "greetings": ("Dear Support Team,", "Hello,", "Dear Customer Service,"),
        "closings": ("Kind regards,", "Best regards,", "Thank you,"),
        "topics": (
            (
                "crash",
                (
                    "{p} crashes every time we open a shared project.",
                    "{p} closes unexpectedly after the update.",
                ),
            ),
            (
                "invoice",
                ("Our last invoice for {p} was charged twice.", "The {p} invoice shows the wrong amount."),
            ),
            ("login", ("We cannot sign in to {p} anymore.", "Password resets for {p} do not arrive.")),
            (
                "outage",
                ("{p} is not reachable from our offices.", "{p} returns a server error on every request."),
            ),
            ("feature", ("How can we export reports from {p}?", "Does {p} support single sign-on?")),
            (
                "plan",
                (
                    "We would like to change our {p} subscription plan.",
                    "Please update the billing contact of {p}.",
                ),
            ),
        ),
        "cues": {
            "high": {
                "subjects": ("URGENT: {p} {t}", "Critical: {p} {t} blocks all users", "Emergency - {p} {t}"),
                "sentences": (
                    "This is urgent: production is down and all users are affected.",
                    "We are losing revenue every hour, please act immediately.",
                    "This is a critical outage for the whole company and needs an immediate fix.",
                    "Customer data may be at risk, we need help right now.",
                ),
            },
            "medium": {
                "subjects": ("{p} {t} problem", "Issue with {p} {t}", "{p}: {t} not working properly"),
                "sentences": (
                    "Some colleagues are affected, but we have a workaround for now.",
                    "It slows down part of the team, please look into it in the next days.",
                    "The problem happens from time to time and is annoying for a few users.",
                    "Please check this when you can this week, it affects one department.",
                ),
            },
            "low": {
                "subjects": ("Question about {p} {t}", "Small {p} {t} request", "{p} {t} - no rush"),
                "sentences": (
                    "There is no rush, whenever it is convenient for you.",
                    "This is only a minor question and nothing is blocked.",
                    "Just a small cosmetic detail, please handle it when you have time.",
                    "No urgency at all, it is just for our information.",
                ),
            },
        },
        "details": (
            "We already restarted the application.",
            "Our version is the latest one.",
            "Screenshots are available on request.",
            "The account number is <acc_num>.",
        ),
        "answer": "Thank you for contacting us about {p}. We are looking into it and will get back to you.",
    },
    "de": {
        "greetings": ("Sehr geehrtes Support-Team,", "Hallo,", "Liebes Kundenservice-Team,"),
        "closings": ("Mit freundlichen Grüßen,", "Viele Grüße,", "Vielen Dank,"),
        "topics": (
            (
                "Absturz",
                (
                    "{p} stürzt jedes Mal ab, wenn wir ein geteiltes Projekt öffnen.",
                    "{p} schließt sich nach dem Update unerwartet.",
                ),
            ),
            (
                "Rechnung",
                (
                    "Unsere letzte Rechnung für {p} wurde doppelt abgebucht.",
                    "Die Rechnung für {p} zeigt einen falschen Betrag.",
                ),
            ),
            (
                "Anmeldung",
                (
                    "Wir können uns nicht mehr bei {p} anmelden.",
                    "Die E-Mails zum Zurücksetzen des Passworts für {p} kommen nicht an.",
                ),
            ),
            (
                "Ausfall",
                (
                    "{p} ist von unseren Büros aus nicht erreichbar.",
                    "{p} liefert bei jeder Anfrage einen Serverfehler.",
                ),
            ),
            ("Funktion", ("Wie können wir Berichte aus {p} exportieren?", "Unterstützt {p} Single Sign-On?")),
            (
                "Tarif",
                (
                    "Wir möchten unseren {p}-Tarif ändern.",
                    "Bitte aktualisieren Sie den Rechnungskontakt für {p}.",
                ),
            ),
        ),
        "cues": {
            "high": {
                "subjects": (
                    "DRINGEND: {p} {t}",
                    "Kritisch: {p} {t} blockiert alle Nutzer",
                    "Notfall - {p} {t}",
                ),
                "sentences": (
                    "Das ist dringend: die Produktion steht still und alle Nutzer sind betroffen.",
                    "Wir verlieren jede Stunde Umsatz, bitte handeln Sie sofort.",
                    "Es handelt sich um einen kritischen Ausfall für das ganze Unternehmen, "
                    "wir brauchen sofort eine Lösung.",
                    "Kundendaten könnten gefährdet sein, wir brauchen umgehend Hilfe.",
                ),
            },
            "medium": {
                "subjects": ("Problem mit {p} {t}", "{p}: {t} funktioniert nicht richtig", "{p} {t} Störung"),
                "sentences": (
                    "Einige Kollegen sind betroffen, aber wir haben vorerst eine Umgehungslösung.",
                    "Es bremst einen Teil des Teams aus, bitte sehen Sie sich das in den nächsten Tagen an.",
                    "Das Problem tritt gelegentlich auf und stört einige Nutzer.",
                    "Bitte prüfen Sie das im Laufe der Woche, es betrifft eine Abteilung.",
                ),
            },
            "low": {
                "subjects": ("Frage zu {p} {t}", "Kleine Anfrage zu {p} {t}", "{p} {t} - keine Eile"),
                "sentences": (
                    "Es eilt nicht, wann immer es Ihnen passt.",
                    "Das ist nur eine kleine Frage und nichts ist blockiert.",
                    "Nur ein kleines kosmetisches Detail, bitte bearbeiten Sie es, wenn Sie Zeit haben.",
                    "Keine Dringlichkeit, es dient nur zu unserer Information.",
                ),
            },
        },
        "details": (
            "Wir haben die Anwendung bereits neu gestartet.",
            "Wir nutzen die neueste Version.",
            "Screenshots können wir gerne nachreichen.",
            "Die Kontonummer lautet <acc_num>.",
        ),
        "answer": "Vielen Dank für Ihre Nachricht zu {p}. Wir prüfen das Anliegen und melden uns bei Ihnen.",
    },
    "es": {
        "greetings": ("Estimado equipo de soporte:", "Hola:", "Estimado servicio al cliente:"),
        "closings": ("Saludos cordiales,", "Atentamente,", "Gracias,"),
        "topics": (
            (
                "fallo",
                (
                    "{p} se cierra cada vez que abrimos un proyecto compartido.",
                    "{p} deja de funcionar de forma inesperada después de la actualización.",
                ),
            ),
            (
                "factura",
                (
                    "Nuestra última factura de {p} se cobró dos veces.",
                    "La factura de {p} muestra un importe incorrecto.",
                ),
            ),
            (
                "acceso",
                (
                    "Ya no podemos iniciar sesión en {p}.",
                    "No llegan los correos para restablecer la contraseña de {p}.",
                ),
            ),
            (
                "caída",
                (
                    "{p} no está accesible desde nuestras oficinas.",
                    "{p} devuelve un error del servidor en cada solicitud.",
                ),
            ),
            (
                "función",
                ("¿Cómo podemos exportar informes desde {p}?", "¿{p} admite el inicio de sesión único?"),
            ),
            (
                "plan",
                (
                    "Queremos cambiar nuestro plan de suscripción de {p}.",
                    "Por favor, actualicen el contacto de facturación de {p}.",
                ),
            ),
        ),
        "cues": {
            "high": {
                "subjects": (
                    "URGENTE: {p} {t}",
                    "Crítico: {p} {t} bloquea a todos los usuarios",
                    "Emergencia - {p} {t}",
                ),
                "sentences": (
                    "Es urgente: la producción está detenida y todos los usuarios están afectados.",
                    "Estamos perdiendo ingresos cada hora, por favor actúen de inmediato.",
                    "Es una caída crítica para toda la empresa y necesitamos una solución inmediata.",
                    "Los datos de clientes podrían estar en riesgo, necesitamos ayuda ahora mismo.",
                ),
            },
            "medium": {
                "subjects": ("Problema con {p} {t}", "{p}: {t} no funciona bien", "Incidencia de {p} {t}"),
                "sentences": (
                    "Algunos compañeros están afectados, pero por ahora tenemos una solución provisional.",
                    "Retrasa a parte del equipo, por favor revísenlo en los próximos días.",
                    "El problema ocurre de vez en cuando y molesta a algunos usuarios.",
                    "Por favor revísenlo durante esta semana, afecta a un departamento.",
                ),
            },
            "low": {
                "subjects": ("Pregunta sobre {p} {t}", "Pequeña consulta de {p} {t}", "{p} {t} - sin prisa"),
                "sentences": (
                    "No hay prisa, cuando les venga bien.",
                    "Es solo una pequeña duda y nada está bloqueado.",
                    "Es solo un detalle estético menor, atiéndanlo cuando tengan tiempo.",
                    "No es urgente en absoluto, es solo para nuestra información.",
                ),
            },
        },
        "details": (
            "Ya reiniciamos la aplicación.",
            "Usamos la versión más reciente.",
            "Podemos enviar capturas de pantalla si las necesitan.",
            "El número de cuenta es <acc_num>.",
        ),
        "answer": "Gracias por contactarnos sobre {p}. Estamos revisando el caso y les responderemos pronto.",
    },
    "fr": {
        "greetings": ("Chère équipe d'assistance,", "Bonjour,", "Cher service client,"),
        "closings": ("Cordialement,", "Bien à vous,", "Merci,"),
        "topics": (
            (
                "plantage",
                (
                    "{p} plante chaque fois que nous ouvrons un projet partagé.",
                    "{p} se ferme de façon inattendue après la mise à jour.",
                ),
            ),
            (
                "facture",
                (
                    "Notre dernière facture {p} a été débitée deux fois.",
                    "La facture {p} indique un montant erroné.",
                ),
            ),
            (
                "connexion",
                (
                    "Nous ne pouvons plus nous connecter à {p}.",
                    "Les e-mails de réinitialisation du mot de passe {p} n'arrivent pas.",
                ),
            ),
            (
                "panne",
                (
                    "{p} n'est pas accessible depuis nos bureaux.",
                    "{p} renvoie une erreur serveur à chaque requête.",
                ),
            ),
            (
                "fonction",
                (
                    "Comment pouvons-nous exporter des rapports depuis {p} ?",
                    "{p} prend-il en charge l'authentification unique ?",
                ),
            ),
            (
                "abonnement",
                (
                    "Nous souhaitons changer notre abonnement {p}.",
                    "Merci de mettre à jour le contact de facturation {p}.",
                ),
            ),
        ),
        "cues": {
            "high": {
                "subjects": (
                    "URGENT : {p} {t}",
                    "Critique : {p} {t} bloque tous les utilisateurs",
                    "Urgence - {p} {t}",
                ),
                "sentences": (
                    "C'est urgent : la production est à l'arrêt et tous les utilisateurs sont touchés.",
                    "Nous perdons du chiffre d'affaires chaque heure, merci d'agir immédiatement.",
                    "Il s'agit d'une panne critique pour toute l'entreprise, "
                    "il nous faut une correction immédiate.",
                    "Les données clients pourraient être menacées, nous avons besoin d'aide tout de suite.",
                ),
            },
            "medium": {
                "subjects": (
                    "Problème avec {p} {t}",
                    "{p} : {t} ne fonctionne pas correctement",
                    "Incident {p} {t}",
                ),
                "sentences": (
                    "Quelques collègues sont concernés, "
                    "mais nous avons une solution de contournement pour l'instant.",
                    "Cela ralentit une partie de l'équipe, merci de regarder dans les prochains jours.",
                    "Le problème survient de temps en temps et gêne quelques utilisateurs.",
                    "Merci de vérifier cela dans la semaine, cela touche un service.",
                ),
            },
            "low": {
                "subjects": ("Question sur {p} {t}", "Petite demande {p} {t}", "{p} {t} - pas pressé"),
                "sentences": (
                    "Rien ne presse, quand cela vous convient.",
                    "C'est seulement une petite question et rien n'est bloqué.",
                    "Juste un petit détail esthétique, à traiter quand vous aurez le temps.",
                    "Aucune urgence, c'est seulement pour notre information.",
                ),
            },
        },
        "details": (
            "Nous avons déjà redémarré l'application.",
            "Nous utilisons la dernière version.",
            "Nous pouvons fournir des captures d'écran.",
            "Le numéro de compte est <acc_num>.",
        ),
        "answer": "Merci de nous avoir contactés au sujet de {p}. "
        "Nous examinons la demande et revenons vers vous.",
    },
    "pt": {
        "greetings": ("Prezada equipe de suporte,", "Olá,", "Prezado atendimento ao cliente,"),
        "closings": ("Atenciosamente,", "Cumprimentos,", "Obrigado,"),
        "topics": (
            (
                "falha",
                (
                    "O {p} trava sempre que abrimos um projeto compartilhado.",
                    "O {p} fecha inesperadamente depois da atualização.",
                ),
            ),
            (
                "fatura",
                (
                    "Nossa última fatura do {p} foi cobrada duas vezes.",
                    "A fatura do {p} mostra um valor incorreto.",
                ),
            ),
            (
                "acesso",
                (
                    "Não conseguimos mais entrar no {p}.",
                    "Os e-mails de redefinição de senha do {p} não chegam.",
                ),
            ),
            (
                "indisponibilidade",
                (
                    "O {p} não está acessível a partir dos nossos escritórios.",
                    "O {p} retorna um erro de servidor em cada pedido.",
                ),
            ),
            ("recurso", ("Como podemos exportar relatórios do {p}?", "O {p} suporta login único?")),
            (
                "plano",
                (
                    "Gostaríamos de mudar o nosso plano de assinatura do {p}.",
                    "Por favor, atualizem o contato de cobrança do {p}.",
                ),
            ),
        ),
        "cues": {
            "high": {
                "subjects": (
                    "URGENTE: {p} {t}",
                    "Crítico: {p} {t} bloqueia todos os usuários",
                    "Emergência - {p} {t}",
                ),
                "sentences": (
                    "É urgente: a produção está parada e todos os usuários estão afetados.",
                    "Estamos perdendo receita a cada hora, por favor ajam imediatamente.",
                    "É uma falha crítica para toda a empresa e precisamos de uma correção imediata.",
                    "Os dados dos clientes podem estar em risco, precisamos de ajuda agora mesmo.",
                ),
            },
            "medium": {
                "subjects": ("Problema com {p} {t}", "{p}: {t} não funciona bem", "Ocorrência {p} {t}"),
                "sentences": (
                    "Alguns colegas estão afetados, mas por enquanto temos uma solução alternativa.",
                    "Atrasa parte da equipe, por favor verifiquem nos próximos dias.",
                    "O problema acontece de vez em quando e incomoda alguns usuários.",
                    "Por favor verifiquem isso durante a semana, afeta um departamento.",
                ),
            },
            "low": {
                "subjects": ("Dúvida sobre {p} {t}", "Pequeno pedido {p} {t}", "{p} {t} - sem pressa"),
                "sentences": (
                    "Não há pressa, quando for conveniente para vocês.",
                    "É apenas uma pequena dúvida e nada está bloqueado.",
                    "Apenas um pequeno detalhe estético, tratem quando tiverem tempo.",
                    "Nenhuma urgência, é apenas para nossa informação.",
                ),
            },
        },
        "details": (
            "Já reiniciamos o aplicativo.",
            "Usamos a versão mais recente.",
            "Podemos enviar capturas de tela se precisarem.",
            "O número da conta é <acc_num>.",
        ),
        "answer": "Obrigado por nos contactar sobre o {p}. "
        "Estamos analisando o caso e retornaremos em breve.",
    },
}
