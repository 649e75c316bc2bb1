//! Function words of the languages news arrives in, and a guess of a headline's language
//! from them, so that "la", "och" or "der" never count as evidence that two items tell the
//! same story.
//!
//! The guess is deliberately cheap (a set lookup per word, no model): a headline is taken to
//! be in language L when it holds more of L's *marker* words (function words of L that are not
//! also English words) than English function words. Only then are L's function words that
//! double as English content words ("die", "war" in German, "son" in French) removed, so an
//! English headline about a war keeps its war. Words are compared after the engine's
//! normalisation (lowercase, diacritics folded: "är" is "ar", "für" is "fur").

use std::collections::HashMap;
use std::sync::OnceLock;

/// A language whose function words are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English (also the guess when nothing else fits).
    En,
    /// German.
    De,
    /// French.
    Fr,
    /// Spanish.
    Es,
    /// Italian.
    It,
    /// Portuguese.
    Pt,
    /// Dutch.
    Nl,
    /// Swedish.
    Sv,
    /// Danish and Norwegian (their function words mostly coincide).
    Da,
    /// Finnish.
    Fi,
    /// Czech and Slovak.
    Cs,
    /// Polish.
    Pl,
    /// Turkish.
    Tr,
    /// Indonesian and Malay.
    Id,
}

/// English function words (input lowercase, folded).
const EN: &str = "a about above after again against all am an and any are as at be because been before being \
    below between both but by can could did do does doing down during each few for from further had has have having \
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor \
    not now of off on once only or other our ours ourselves out over own same she should so some such than that the \
    their theirs them themselves then there these they this those through to too under until up very was we were \
    what when where which while who whom why will with would you your yours yourself yourselves s t via vs amp also \
    may might must shall";

/// Per language: its function words. Folded like the engine's words (no diacritics).
const OTHER: &[(Lang, &str)] = &[
    (
        Lang::De,
        "der die das den dem des ein eine einer eines einem einen und oder aber auch nicht kein keine ist sind war \
         waren wird werden wurde wurden hat haben hatte sein seine ihr ihre ich du er sie es wir man mit von zu zum zur \
         auf aus bei nach vor uber unter fur gegen ohne um im am ins vom als wie wenn dass ob so noch nur schon sehr \
         mehr dann doch hier da was wer wo warum sich mich dir mir uns euch dieser diese dieses jetzt immer bis seit",
    ),
    (
        Lang::Fr,
        "le la les un une des du de au aux et ou mais donc car ni ne pas plus que qui quoi dont ou ce cet cette ces \
         son sa ses leur leurs mon ma mes ton ta tes notre nos votre vos je tu il elle on nous vous ils elles est sont \
         etait ete etre avoir ai a as avons ont fait faire pour par sur sous dans avec sans chez entre vers en y se \
         lui leur meme tout tous toute toutes tres bien aussi comme quand cest qu lors apres avant depuis selon",
    ),
    (
        Lang::Es,
        "el la los las un una unos unas y o pero ni que de del al a en con por para sin sobre entre hasta desde \
         como cuando donde mas muy ya no si se su sus le les lo me mi te tu nos es son fue ser era esta estan este \
         esto ese esa eso hay ha han habia tiene tienen todo todos toda todas otro otra tambien porque segun tras",
    ),
    (
        Lang::It,
        "il lo la i gli le un uno una e ed o ma che di da del dello della dei degli delle al allo alla ai agli alle \
         nel nello nella nei negli nelle sul sulla sui con per tra fra in su non piu come anche se si ci ne sono e \
         era essere ha hanno questo questa questi quello quella cosa dove quando perche tutto tutti molto gia",
    ),
    (
        Lang::Pt,
        "o a os as um uma uns umas e ou mas que de do da dos das no na nos nas ao aos em com por para sem sobre \
         entre ate desde como quando onde mais muito ja nao se seu sua seus suas lhe ele ela eles elas eu voce e sao \
         foi ser era esta estao este isso esse essa ha tem todo todos toda todas outro outra tambem porque segundo apos",
    ),
    (
        Lang::Nl,
        "de het een en of maar dat die dit deze van in op aan met voor door over bij uit naar om tot als dan ook niet \
         geen wel is zijn was waren wordt worden werd heeft hebben had ik je jij hij zij ze wij we u hun haar mijn \
         zich er hier daar wat wie waar hoe nog al meer zeer toch nu",
    ),
    (
        Lang::Sv,
        "och i att det som en ett den de pa ar av for med till inte om har var kan man sig sin sina han hon vi ni \
         jag du dem deras hans hennes fran ut upp nar efter under over vid men eller sa nu bara da dar hur vad vem \
         ocksa mot utan mellan denna detta dessa alla mycket skall ska blir blev",
    ),
    (
        Lang::Da,
        "og i at det som en et den de pa er af for med til ikke om har var kan man sig sin sine han hun vi jeg du \
         dem deres hans hendes fra ud op nar efter under over ved men eller sa nu kun da der hvor hvad hvem ogsa mod \
         uden mellem denne dette disse alle meget skal blir blev ble",
    ),
    (
        Lang::Fi,
        "ja on ei se etta kun mutta tai niin kuin jos oli ovat olla ole myos vain viela jo nyt sen sita han he me te \
         mina sina kanssa mukaan yli alle ennen jalkeen kaikki joka jotka mika mita tama nama tuo",
    ),
    (
        Lang::Cs,
        "a i v ve na s se z ze do od po pro k ke o u za pri je jsou byl byla bylo byli neni nebo ale ani ze jak kde \
         kdy co kdo ten ta to tento tato toto jeho jeji jejich jsem jsme si sve ktery ktera ktere uz jeste take tak \
         jen nad pod pred mezi bez ma maji",
    ),
    (
        Lang::Pl,
        "i w we na z ze do od po dla o u za przy jest sa byl byla bylo byli nie lub albo ale ani ze jak gdzie kiedy \
         co kto ten ta to tego tej jego jej ich sie jestem jestesmy oraz juz jeszcze takze tak tylko nad pod przed \
         miedzy bez ma maja czy",
    ),
    (
        Lang::Tr,
        "ve ile bir bu su o da de ki mi mu icin gibi kadar daha cok en ama veya ya ne nasil neden olan oldu olarak \
         var yok sonra once her",
    ),
    (
        Lang::Id,
        "dan di ke dari yang ini itu untuk dengan pada adalah akan tidak juga atau ada oleh dalam sebagai telah sudah \
         bisa karena lebih saat tersebut bagi",
    ),
];

/// Common English words that are also function words elsewhere: they never count towards
/// guessing another language (they do not tell an English headline from a foreign one).
const ENGLISH_TOO: &str = "a i in on to so me he be we no die war was also man hat will son net plus art bald \
    fast see as an am is it do go or of us at by if up ten tot van den dan men per sin gift rot bus ball arm hand \
    pod pro pen pie pies con dos ore ate ale dies moto she ok sole met come dove fare nave era her old";

/// Everyday English content words: real words, but so common in any stream of headlines
/// ("new", "report", "version", "watch", "deal") that sharing them says little about sharing
/// a story, however rare a small or topical stream makes them look. Written for this project
/// from general knowledge of English word frequency, not taken from the test data.
const COMMON: &str =
    "time year years day days week weeks month months today tonight tomorrow yesterday morning night evening hour\
    hours minute minutes moment age ago early late later soon now still ever never always often again back first\
    last next new old young good great best better bad worse worst big small large little long short high low\
    top full free open close closed closes closing real true right wrong left own same different other another\
    many much more most less least few several each every all any some such sure hard easy clear simple possible\
    important major main key special general local national global international public private social political\
    economic financial personal human natural final single whole half double part parts way ways thing things\
    something nothing everything anything people person man men woman women child children kid kids family\
    families friend friends home house life lives world country countries city cities state states place places\
    area areas land water air fire light power money cash price prices cost costs pay paid value market markets\
    business company companies firm firms group groups team teams member members job jobs work works worked\
    working worker workers office school schools student students class game games play plays played player\
    players show shows shown film films movie movies music song songs story stories news report reports reported\
    says say said saying tell tells told talk talks talked speak speaks ask asks asked answer question questions\
    call calls called name names word words line lines book books paper papers note notes letter page pages list\
    lists series number numbers point points case cases fact facts idea ideas plan plans planned problem\
    problems issue issues reason reasons result results change changes changed changing chance choice level\
    levels rate rates side sides end ends ended start starts started starting begin begins began run runs\
    running ran make makes made making take takes took taken get gets got getting give gives gave given go goes\
    went gone going come comes came coming see sees saw seen look looks looking looked watch watches watched\
    find finds found know knows knew known think thinks thought want wants wanted need needs needed use uses\
    used using try tries tried keep keeps kept help helps helped move moves moved turn turns turned leave leaves\
    put puts set sets stand stands stop stops stopped hold holds held bring brings brought live lived living die\
    dies died death deaths kill kills killed win wins won lose loses lost buy buys bought sell sells sold build\
    builds built grow grows grew growth rise rises rose fall falls fell drop drops dropped cut cuts hit hits add\
    adds added miss missed meet meets met send sends sent follow follows lead leads led feel feels felt become\
    becomes became seem seems allow allows offer offers offered provide provides create creates created include\
    includes including continue continues learn learns understand happen happens happened expect expects\
    expected return returns returned join joins joined pass passes passed release releases released launch\
    launches launched update updates updated version versions review reviews guide guides tips video videos\
    photo photos picture pictures image images blog post posts site web online internet digital data system\
    systems service services product products program programs project projects model models design test tests\
    testing software app apps tool tools phone phones computer computers tech technology science research study\
    studies health care food car cars road street war peace law laws court police government official officials\
    president minister leader leaders party election vote voters policy rule rules rights security safety risk\
    risks deal deals trade sale sales stock stocks share shares bank banks fund funds tax taxes budget economy\
    energy oil gas industry industries center centre event events season sport sports club league match cup\
    round race record records history future past present view views experience support interest sense control\
    force effect effects action actions activity process order form type kind sort style role position head hand\
    hands face eye eyes body mind heart voice sound art culture community society nature environment space earth\
    sun moon sky star stars weather summer winter spring autumn weekend holiday love hate hope fear worry trust\
    truth lie lies secret secrets mystery surprise fix fixes fixed trip travel visit visits visited tour town\
    village region north south east west northern southern eastern western central inside outside above below\
    behind near far around across along among through without within against toward towards million millions\
    billion billions thousand thousands hundred hundreds percent dollar dollars euro euros pound pounds amount\
    total average edition episode chapter volume";

struct Tables {
    english: std::collections::HashSet<&'static str>,
    /// Word -> languages it is a function word of.
    other: HashMap<&'static str, Vec<Lang>>,
    /// Word -> languages it is a *marker* of (function word there, not an English word).
    markers: HashMap<&'static str, Vec<Lang>>,
    /// [`COMMON`], stemmed as the engine stems title words.
    common: std::collections::HashSet<String>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let english: std::collections::HashSet<&str> = EN.split_whitespace().collect();
        let english_too: std::collections::HashSet<&str> = ENGLISH_TOO.split_whitespace().collect();
        let mut other: HashMap<&str, Vec<Lang>> = HashMap::new();
        let mut markers: HashMap<&str, Vec<Lang>> = HashMap::new();
        for &(lang, list) in OTHER {
            for w in list.split_whitespace() {
                let e = other.entry(w).or_default();
                if !e.contains(&lang) {
                    e.push(lang);
                }
                if !english.contains(w) && !english_too.contains(w) && w.len() > 1 {
                    let m = markers.entry(w).or_default();
                    if !m.contains(&lang) {
                        m.push(lang);
                    }
                }
            }
        }
        let common = COMMON.split_whitespace().map(crate::dedup::story::stem).collect();
        Tables { english, other, markers, common }
    })
}

/// True for an English function word (input already lowercase and folded).
pub fn is_english_stop(word: &str) -> bool {
    tables().english.contains(word)
}

/// The language of a headline, guessed from its (normalised) words: the language with the
/// most marker words, if it has more of them than the headline has English function words.
pub fn guess<S: AsRef<str>>(words: &[S]) -> Lang {
    let t = tables();
    let mut english = 0usize;
    let mut counts: [(Lang, usize); OTHER.len()] = std::array::from_fn(|i| (OTHER[i].0, 0));
    for w in words {
        let w = w.as_ref();
        if t.english.contains(w) {
            english += 1;
        }
        if let Some(langs) = t.markers.get(w) {
            for l in langs {
                if let Some(c) = counts.iter_mut().find(|c| c.0 == *l) {
                    c.1 += 1;
                }
            }
        }
    }
    // Ties between languages go to the earlier one in the table (an arbitrary but fixed order).
    let best = counts.iter().fold((Lang::En, 0usize), |acc, c| if c.1 > acc.1 { *c } else { acc });
    if best.1 > english {
        best.0
    } else {
        Lang::En
    }
}

/// True for an everyday English word (already stemmed), weak evidence of a shared story.
pub fn is_common(stemmed: &str) -> bool {
    tables().common.contains(stemmed)
}

/// True when `word` is a function word of English, or of `lang`.
pub fn is_stop(word: &str, lang: Lang) -> bool {
    let t = tables();
    t.english.contains(word) || (lang != Lang::En && t.other.get(word).is_some_and(|l| l.contains(&lang)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        crate::dedup::story::words(&crate::dedup::story::normalize(s))
    }

    #[test]
    fn guesses_the_languages_of_the_distractors() {
        assert_eq!(guess(&w("Numerär är inte allt i strid")), Lang::Sv);
        assert_eq!(guess(&w("A Louveciennes, la folle histoire de la « maison la plus chère du monde »")), Lang::Fr);
        assert_eq!(guess(&w("C'est quoi la neutralité du net ?")), Lang::Fr);
        assert_eq!(guess(&w("Microsoft veröffentlicht Cordova-Erweiterung für Visual Studio Code")), Lang::De);
        assert_eq!(guess(&w("Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações")), Lang::Pt);
        // English stays English, even with words that are German or French function words.
        assert_eq!(guess(&w("Why soldiers die in a war nobody wanted")), Lang::En);
        assert_eq!(guess(&w("Son of Fed chief says the net effect is plus")), Lang::En);
        assert_eq!(guess(&w("Apple's AR Is Closer to Reality Than Google's")), Lang::En);
    }

    #[test]
    fn foreign_function_words_are_stop_words_only_in_their_language() {
        assert!(is_stop("ar", Lang::Sv));
        assert!(!is_stop("ar", Lang::En));
        assert!(is_stop("war", Lang::De));
        assert!(!is_stop("war", Lang::En));
        assert!(is_stop("the", Lang::Fr), "English function words are always stop words");
    }
}
